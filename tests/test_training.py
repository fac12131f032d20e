"""Training from the command line: kill-and-resume is bit-exact, DDP on 2 processes matches 1 process.

The runs use the smoke preset in a private data folder: a few seconds of rendering and a
4-step autoencoder, then short denoiser runs.
"""
import os, random, signal, subprocess, sys, time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='module')
def env(tmp_path_factory):
    data = tmp_path_factory.mktemp('data')
    env = {**os.environ, 'WALT_DATA_DIR': str(data), 'WALT_PRESET': 'smoke', 'OMP_NUM_THREADS': '1'}
    env.pop('WALT_FAULT_CHECKPOINT', None)
    run(['autoencoder', '--no-progress'], env)
    return env


def run(args, env, check=True, **kw):
    out = subprocess.run([sys.executable, '-m', 'walt_paper.cli', *args], env=env, cwd=ROOT, capture_output=True, text=True, **kw)
    if check and out.returncode != 0: raise AssertionError(f"walt-paper {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return out


def final_checkpoint(folder):
    ck = Path(folder) / 'checkpoints'
    return ck / (ck / 'latest').read_text().strip()


def train_args(out, steps=12):
    return ['train', '--objective', 'video', '--out', str(out), '--steps', str(steps), '--ckpt-every', '3', '--no-progress']


def test_kill_and_resume_is_bit_exact(env, tmp_path):
    run(train_args(tmp_path / 'straight'), env)
    killed = tmp_path / 'killed'
    # 1. a kill half-way through writing the checkpoint of step 6
    out = run(train_args(killed), {**env, 'WALT_FAULT_CHECKPOINT': '6'}, check=False)
    assert out.returncode == -signal.SIGKILL
    assert final_checkpoint(killed).name == 'step-00000003'           # the last good checkpoint is intact
    # 2. two kills at random moments
    rng = random.Random(0)
    for _ in range(2):
        proc = subprocess.Popen([sys.executable, '-m', 'walt_paper.cli', *train_args(killed)], env=env, cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(2.0, 5.0)); proc.send_signal(signal.SIGKILL); proc.wait()
    # 3. resume to the end
    run(train_args(killed), env)
    a, b = final_checkpoint(tmp_path / 'straight'), final_checkpoint(killed)
    assert a.name == b.name == 'step-00000012'
    for name in ('model.safetensors', 'ema.safetensors'):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    oa, ob = torch.load(a / 'optimizer.pt'), torch.load(b / 'optimizer.pt')
    for k, state in oa['state'].items():
        for key, value in state.items(): assert torch.equal(value, ob['state'][k][key]), (k, key)
    assert (tmp_path / 'straight' / 'loss.csv').read_text() == (killed / 'loss.csv').read_text()


def test_resume_refuses_another_objective(env, tmp_path):
    run(train_args(tmp_path / 'v', steps=3), env)
    out = run(['train', '--objective', 'image', '--out', str(tmp_path / 'v'), '--steps', '3', '--no-progress'], env, check=False)
    assert out.returncode != 0 and 'cannot resume' in out.stderr and "objective: checkpoint has 'video', this run asks for 'image'" in out.stderr


@pytest.mark.parametrize('objective', ['video'])
def test_ddp_two_processes_match_one(env, tmp_path, objective):
    args = ['train', '--objective', objective, '--steps', '4', '--no-progress']
    run([*args, '--out', str(tmp_path / 'one')], env)
    ddp = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2',
                          '-m', 'walt_paper.cli', *args, '--out', str(tmp_path / 'two')],
                         env=env, cwd=ROOT, capture_output=True, text=True)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    one, two = load_file(final_checkpoint(tmp_path / 'one') / 'model.safetensors'), load_file(final_checkpoint(tmp_path / 'two') / 'model.safetensors')
    assert one.keys() == two.keys()
    for k in one: torch.testing.assert_close(one[k], two[k], rtol=1e-4, atol=1e-5, msg=k)
    # the same examples with the same noise: the logged (globally averaged) losses agree too
    la = (tmp_path / 'one' / 'loss.csv').read_text().splitlines()[1:]
    lb = (tmp_path / 'two' / 'loss.csv').read_text().splitlines()[1:]
    assert len(la) == len(lb) == 4
    for x, y in zip(la, lb): assert abs(float(x.split(',')[1]) - float(y.split(',')[1])) < 1e-4


def test_autoencoder_kill_and_resume_is_bit_exact(env, tmp_path):
    args = lambda out: ['autoencoder', '--out', str(out), '--steps', '6', '--ckpt-every', '2', '--no-progress']
    run(args(tmp_path / 'straight'), env)
    killed = tmp_path / 'killed'
    out = run(args(killed), {**env, 'WALT_FAULT_CHECKPOINT': '4'}, check=False)   # killed half-way through writing step 4
    assert out.returncode == -signal.SIGKILL
    assert final_checkpoint(killed).name == 'step-00000002'                        # the last good checkpoint is intact
    run(args(killed), env)
    a, b = final_checkpoint(tmp_path / 'straight'), final_checkpoint(killed)
    assert a.name == b.name == 'step-00000006'
    for name in ('model.safetensors', 'ema.safetensors'):
        if (a / name).exists(): assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert (a / 'model.safetensors').exists()
    oa, ob = torch.load(a / 'optimizer.pt'), torch.load(b / 'optimizer.pt')
    for k, state in oa['state'].items():
        for key, value in state.items(): assert torch.equal(value, ob['state'][k][key]), (k, key)
    assert (tmp_path / 'straight' / 'loss.csv').read_text() == (killed / 'loss.csv').read_text()
