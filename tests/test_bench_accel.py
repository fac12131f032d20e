"""The accelerator benchmark (tests/benchmarks/bench_accel.py) runs here on the CPU, eager and compiled in one process
and eager in two under torchrun with DDP (gloo), so that the script a CUDA machine runs is not run for the first time
there (its CUDA-only lines, the device's synchronisation, peak memory and NCCL, only run there).
What it measures is not checked (speed is for benchmarks, not tests); that it runs, reports every size and objective
with the quantities it promises, writes its file, and refuses bad arguments by name, is. Last, the CUDA path's bf16
autocast arithmetic, with the CPU's autocast standing in.
"""
import os, re, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / 'tests' / 'benchmarks' / 'bench_accel.py'
ENV = {**os.environ, 'OMP_NUM_THREADS': '1'}
STEP_LINE = re.compile(r"^tiny  (image|video)-walt \([\d.]+M params\), batch 2 x 5 x 16 x 16 = 2560 tokens per process: "
                       r"[\d.]+ ms/step, \d+ tokens/s in all, [\d.]+ TFLOP/step, [\d.]+ TFLOP/s per process = \d+% of the matmul$", re.M)


def bench(*args, launcher=(sys.executable,)):
    return subprocess.run([*launcher, str(SCRIPT), '--device', 'cpu', '--sizes', 'tiny', '--batch', '2', '--steps', '1', *args],
                          capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=600)


def test_one_process_reports_every_objective_and_writes_its_file(tmp_path):
    out = bench('--out', str(tmp_path / 'gpu.md'))
    assert out.returncode == 0, out.stderr[-3000:]
    assert len(STEP_LINE.findall(out.stdout)) == 2, out.stdout
    assert out.stdout.count('attention operators per step:') == 2 and 'aten::bmm' in out.stdout   # the CPU's training path
    assert re.search(r"^# training step on .+ \(cpu\), torch .+, 1 process\(es\), fp32, git \w+", out.stdout, re.M), out.stdout
    written = (tmp_path / 'gpu.md').read_text()
    assert written.startswith('```\n# training step on') and len(STEP_LINE.findall(written)) == 2


def test_compiled_step_is_reported_or_the_reason_it_could_not_run():
    out = bench('--compile', '--objectives', 'video')                                          # one compile: CI's time
    assert out.returncode == 0, out.stderr[-3000:]
    compiled = re.findall(r"^      torch\.compile: (?:[\d.]+ ms/step, [\d.]+x the eager step, after \d+ s of compiling; \d+ graph break\(s\), "
                          r"\d+ recompilation\(s\)|could not run \(\w+: .+\))$", out.stdout, re.M)
    assert len(compiled) == 1 and len(STEP_LINE.findall(out.stdout)) == 1, out.stdout


def test_ddp_under_torchrun():
    out = bench(launcher=(sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2'))
    assert out.returncode == 0, out.stderr[-3000:]
    assert '2 process(es) (DDP)' in out.stdout and len(STEP_LINE.findall(out.stdout)) == 2, out.stdout   # rank 0 prints, once


def test_bad_arguments_are_named():
    for args, named in ((('--sizes', 'tiny,huge'), "unknown sizes ['huge']"), (('--steps', '0'), '--steps must be a positive integer'),
                        (('--batch', '0'), '--batch must be a positive integer; got 0'),
                        (('--device', 'tpu'), "--device 'tpu'"), (('--objectives', 'audio'), "--objectives 'audio'")):
        out = bench(*args)
        assert out.returncode != 0 and named in out.stderr, (args, out.stderr[-500:])


def test_training_and_feature_steps_run_under_bf16_autocast():
    """The CUDA path's arithmetic (bf16 autocast, as `train_step` and `extract_features` use it on a GPU) through the
    denoisers' and the autoencoder's losses, their backward passes and the feature pass, with CPU autocast standing in
    for CUDA's: a dtype mismatch between autocast's bf16 products and the float32 norms and losses fails here. (The
    two autocasts' operator lists differ, so a run on a GPU remains the real check.)"""
    import torch
    from walt_paper.model import build_autoencoder, build_walt
    from walt_paper.pipeline import LATENT_FRAMES, autoencoder_loss, walt_loss
    from walt_paper.probes import extract_features
    from walt_paper.train import step_generators
    torch.manual_seed(0)
    gens = lambda n: step_generators(0, 0, range(n))
    for objective in ('image', 'video'):
        model = build_walt('tiny', objective)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            loss = walt_loss(objective, image_fraction=0.0)(model, torch.randn(2, 8, LATENT_FRAMES + 17, 8, 8), gens(2), 0)
            features = extract_features(model, torch.randn(2, 8, LATENT_FRAMES, 8, 8), 0.2, [1, 3])
        loss.backward()
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        assert loss.dtype == torch.float32 and torch.isfinite(loss) and grads and all(torch.isfinite(g).all() for g in grads), objective
        assert all(f.dtype == torch.float32 and torch.isfinite(f).all() for f in features.values()), objective
    ae = build_autoencoder('tiny')
    with torch.autocast('cpu', dtype=torch.bfloat16):
        loss = autoencoder_loss(16, 5)(ae, torch.randint(0, 255, (2, 17, 32, 32, 3), dtype=torch.uint8), gens(2), 0)
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all() for p in ae.parameters() if p.grad is not None)
