"""Training from the command line: kill-and-resume is bit-exact, DDP on 2 processes matches 1 process; checkpoints
of another objective or size, damaged ones (truncated, garbage, missing files) and ones without their run description are
refused, by loading and by resuming, with an error that names the file and what a valid checkpoint is.

The runs use the smoke preset in a private data folder: a few seconds of rendering and a
4-step autoencoder, then short denoiser runs.
"""
import json, os, random, shutil, signal, subprocess, sys, time
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


# ---------------------------------------------------------------- checkpoints of another run, damaged or without their run

@pytest.fixture(scope='module')
def video_run(env, tmp_path_factory):
    "A 3-step V-WALT run folder (one checkpoint, step 3); the tests below damage copies of it."
    out = tmp_path_factory.mktemp('video-run')
    run(train_args(out, steps=3), env)
    return out


@pytest.fixture
def here(env, monkeypatch):
    "The library, called in this process, reads the module's data folder (its world, autoencoder and latents)."
    monkeypatch.setenv('WALT_DATA_DIR', env['WALT_DATA_DIR']); monkeypatch.setenv('WALT_PRESET', 'smoke')
    from walt_paper import pipeline
    return pipeline


def copy_run(src, dst):
    shutil.copytree(src, dst)
    return Path(dst), Path(dst)/'checkpoints'/'step-00000003'


def test_load_refuses_another_size_or_objective(here, video_run):
    assert here.load_walt('video', 'smoke', video_run).run['size'] == 'tiny'          # it fits the current latents
    with pytest.raises(ValueError, match=r"step-00000003 holds a WALT of size 'tiny'; asked for size 'small'"):
        here.load_walt('video', 'smoke', video_run, size='small')
    with pytest.raises(ValueError, match=r"holds a 'video' model \(name 'video-walt'\); asked for objective 'image'"):
        here.load_walt('image', 'smoke', video_run)
    with pytest.raises(ValueError, match=r"is a checkpoint of 'video-walt', not of the autoencoder"):
        here.load_autoencoder('smoke', folder=video_run)
    with pytest.raises(ValueError, match=r"holds a None model \(name 'autoencoder'\); asked for objective 'video'"):
        here.load_walt('video', 'smoke', here.run_dir('smoke', 'autoencoder'))


def test_resume_refuses_another_size(here, video_run, tmp_path):
    folder, ck = copy_run(video_run, tmp_path/'video')
    before = {f.name: f.read_bytes() for f in ck.iterdir()}
    with pytest.raises(ValueError, match=r"cannot resume from \S*step-00000003: it belongs to another run \(.*"
                                         r"size: checkpoint has 'tiny', this run asks for 'small'"):
        here.train_walt('video', 'smoke', out=folder, progress=False, walt_size='small', walt_steps=6)
    assert {f.name: f.read_bytes() for f in ck.iterdir()} == before                  # the refused run wrote nothing
    ae = tmp_path/'ae'
    shutil.copytree(here.run_dir('smoke', 'autoencoder'), ae)
    with pytest.raises(ValueError, match=r"cannot resume .*size: checkpoint has 'tiny', this run asks for 'small'"):
        here.train_autoencoder('smoke', out=ae, progress=False, ae_size='small')


def test_cli_size_batch_and_lr_reach_the_run(env, tmp_path):
    "`walt-paper train --size/--batch/--lr` (the paper-scale commands in the README) train what they say, and say so in the checkpoint."
    out = tmp_path/'small'
    run(['train', '--objective', 'image', '--out', str(out), '--steps', '2', '--size', 'small', '--batch', '2', '--lr', '1e-4',
         '--no-progress'], env)
    state = json.loads((final_checkpoint(out)/'state.json').read_text())
    assert state['run']['size'] == 'small' and state['run']['model']['width'] == 128
    assert (state['run']['train']['batch_size'], state['run']['train']['lr']) == (2, 1e-4)
    run(['autoencoder', '--out', str(tmp_path/'ae'), '--steps', '1', '--size', 'small', '--batch', '2', '--lr', '3e-4', '--no-progress'], env)
    state = json.loads((final_checkpoint(tmp_path/'ae')/'state.json').read_text())
    assert state['run']['size'] == 'small' and (state['run']['train']['batch_size'], state['run']['train']['lr']) == (2, 3e-4)
    for args, named in ((['--size', 'huge'], "--size 'huge': valid WALT sizes are ['tiny', 'small', 'base', 'L', 'XL']"),
                        (['--batch', '0'], '--batch must be a positive integer; got 0'),
                        (['--lr', '-1'], '--lr must be a positive learning rate; got -1.0')):
        bad = run(['train', '--objective', 'image', '--out', str(tmp_path/'bad'), '--steps', '1', *args], env, check=False)
        assert bad.returncode != 0 and named in bad.stderr, (args, bad.stderr[-500:])
    bad = run(['autoencoder', '--out', str(tmp_path/'bad'), '--size', 'L'], env, check=False)
    assert bad.returncode != 0 and "--size 'L': valid autoencoder sizes are ['tiny', 'small', 'base', 'paper']" in bad.stderr
    assert not (tmp_path/'bad').exists()                                              # refused before anything was written

def cut(path, keep):
    data = path.read_bytes(); path.write_bytes(data[:int(len(data) * keep)])


def edit_state(ck, change):
    state = json.loads((ck/'state.json').read_text()); change(state); (ck/'state.json').write_text(json.dumps(state))


VALID = r'.*a checkpoint folder holds model\.safetensors, ema\.safetensors, optimizer\.pt and state\.json'
DAMAGES = {
    'truncated-model-safetensors': (lambda ck: cut(ck/'model.safetensors', 0.5),
                                    r'corrupt checkpoint file \S*model\.safetensors \(truncated or overwritten\?' + VALID),
    'ema-safetensors-short-of-its-last-bytes': (lambda ck: cut(ck/'ema.safetensors', 0.999), r'corrupt checkpoint file \S*ema\.safetensors' + VALID),
    'garbage-model-safetensors': (lambda ck: (ck/'model.safetensors').write_bytes(bytes(range(256)) * 16),
                                  r'corrupt checkpoint file \S*model\.safetensors' + VALID),
    'truncated-optimizer': (lambda ck: cut(ck/'optimizer.pt', 0.5), r'corrupt checkpoint file \S*optimizer\.pt' + VALID),
    'garbage-state-json': (lambda ck: (ck/'state.json').write_bytes(b'\x00\xff not json'), r'corrupt checkpoint file \S*state\.json' + VALID),
    'truncated-state-json': (lambda ck: cut(ck/'state.json', 0.5), r'corrupt checkpoint file \S*state\.json' + VALID),
    'state-json-not-an-object': (lambda ck: (ck/'state.json').write_text('[]'), r"state\.json: no \['step', 'rng', 'losses'\] in it" + VALID),
    'state-json-without-step': (lambda ck: edit_state(ck, lambda s: s.pop('step')), r"state\.json: no \['step'\] in it" + VALID),
    'missing-state-json': (lambda ck: (ck/'state.json').unlink(), r"incomplete checkpoint \S*step-00000003: \['state\.json'\] missing" + VALID),
    'missing-ema': (lambda ck: (ck/'ema.safetensors').unlink(), r"incomplete checkpoint \S*: \['ema\.safetensors'\] missing" + VALID),
    'empty-folder': (lambda ck: [f.unlink() for f in ck.iterdir()], r"incomplete checkpoint \S*: \['model\.safetensors', 'ema\.safetensors', "
                                                                  r"'optimizer\.pt', 'state\.json'\] missing"),
    'latest-names-a-missing-step': (lambda ck: (ck.parent/'latest').write_text('step-00000099'),
                                    r"latest names 'step-00000099', which does not exist; .*here \['step-00000003'\]"),
}


@pytest.mark.parametrize('damage', DAMAGES)
def test_damaged_checkpoint_is_refused_by_name(here, video_run, tmp_path, damage):
    "Loading and resuming a damaged checkpoint raise a ValueError naming the damaged file and what a valid checkpoint holds."
    do, message = DAMAGES[damage]
    folder, ck = copy_run(video_run, tmp_path/'video')
    do(ck)
    with pytest.raises(ValueError, match=message): here.load_walt('video', 'smoke', folder)
    with pytest.raises(ValueError, match=message): here.train_walt('video', 'smoke', out=folder, progress=False)


CONFIGS = {   # state.json readable, but its run description (what was trained, with the model's config) missing or wrong
    'no-run': (lambda s: s.pop('run'), r"state\.json describes no run \(a 'run' object with the 'model' config", r"cannot resume .*model: checkpoint has None"),
    'no-model-config': (lambda s: s['run'].pop('model'), r"state\.json describes no run", r"cannot resume .*model: checkpoint has None"),
    'config-of-other-weights': (lambda s: s['run']['model'].update(width=96), r"step-00000003 does not fit a WALT of config \{.*'width': 96",
                                r"cannot resume .*model: checkpoint has \{.*'width': 96"),
    'unknown-config-key': (lambda s: s['run']['model'].update(colour=1),
                           r"holds a WALT config that is not valid here \(.*unexpected keyword argument 'colour'", r"cannot resume .*'colour': 1"),
}


@pytest.mark.parametrize('config', CONFIGS)
def test_checkpoint_without_a_valid_run_description_is_refused(here, video_run, tmp_path, config):
    change, on_load, on_resume = CONFIGS[config]
    folder, ck = copy_run(video_run, tmp_path/'video')
    edit_state(ck, change)
    with pytest.raises(ValueError, match=on_load): here.load_walt('video', 'smoke', folder)
    with pytest.raises(ValueError, match=on_resume): here.train_walt('video', 'smoke', out=folder, progress=False)


def test_autoencoder_checkpoint_without_its_run_is_refused(here, tmp_path):
    folder = tmp_path/'ae'
    shutil.copytree(here.run_dir('smoke', 'autoencoder'), folder)
    ck = folder/'checkpoints'/(folder/'checkpoints'/'latest').read_text().strip()
    edit_state(ck, lambda s: s.pop('run'))
    with pytest.raises(ValueError, match=r"state\.json describes no run .*retrain it \(walt-paper autoencoder --no-resume\)"):
        here.load_autoencoder('smoke', folder=folder)


def test_cli_resume_of_a_truncated_checkpoint_names_it(env, video_run, tmp_path):
    folder, ck = copy_run(video_run, tmp_path/'video')
    cut(ck/'model.safetensors', 0.5)
    out = run(train_args(folder, steps=6), env, check=False)
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith('ValueError: corrupt checkpoint file') and str(ck/'model.safetensors') in last and 'a checkpoint folder holds' in last


def test_git_sha_is_dirty_for_code_not_for_the_study_outputs(tmp_path, monkeypatch):
    # results are stamped with git_sha(): figures an earlier notebook of the same run wrote must not mark the code dirty,
    # any other tracked change must
    import walt_paper.data, walt_paper.train
    git = lambda *a: subprocess.run(['git', '-c', 'user.email=t@t', '-c', 'user.name=t', *a], cwd=tmp_path, check=True,
                                    capture_output=True, text=True).stdout.strip()
    git('init', '-q')
    (tmp_path / 'figures').mkdir(); (tmp_path / 'figures' / 'rows.csv').write_text('a\n1\n'); (tmp_path / 'code.py').write_text('x = 1\n')
    git('add', '.'); git('commit', '-q', '-m', 'start')
    monkeypatch.setattr(walt_paper.data, 'repo_root', lambda: tmp_path)
    sha = lambda: walt_paper.train.git_sha.__wrapped__()
    head = git('rev-parse', '--short', 'HEAD')
    assert sha() == head
    (tmp_path / 'figures' / 'rows.csv').write_text('a\n2\n')
    (tmp_path / 'untracked.txt').write_text('new')
    assert sha() == head
    (tmp_path / 'code.py').write_text('x = 2\n')
    assert sha() == head + '+dirty'


def test_models_measure_the_test_reconstruction_only_when_it_changed(env, monkeypatch):
    "train_models (called by every experiment notebook) reuses the recorded test reconstruction while its key holds."
    from walt_paper import pipeline
    monkeypatch.setenv('WALT_DATA_DIR', env['WALT_DATA_DIR'])
    calls, measure = [], pipeline.reconstruction_quality
    def counted(preset=None, clips=32, folder=None):
        calls.append(preset); return measure(preset, clips, folder)
    monkeypatch.setattr(pipeline, 'reconstruction_quality', counted)
    pipeline.train_models('smoke', progress=False, figures=False)            # denoisers trained now, or found
    assert len(calls) == 1                  # no key recorded yet, or one for another measure's code: measured
    path = pipeline.run_dir('smoke')/'timing.json'
    recorded = json.loads(path.read_text())['autoencoder_test']
    assert recorded['l1'] > 0 and len(recorded['key']) > 0
    pipeline.train_models('smoke', progress=False, figures=False)
    assert len(calls) == 1                                                   # same weights, clips and code: not measured
    record = json.loads(path.read_text()); record['autoencoder_test']['key'] = 'stale'
    path.write_text(json.dumps(record))
    pipeline.train_models('smoke', progress=False, figures=False)
    assert len(calls) == 2 and json.loads(path.read_text())['autoencoder_test']['key'] == recorded['key']
