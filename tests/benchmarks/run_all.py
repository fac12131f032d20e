"""Run every benchmark script and write what they print to figures/benchmarks.md (atomically), under a
header with the machine, torch, the date and the git sha; the whole study's recorded times follow.

Run:  .venv/bin/python tests/benchmarks/run_all.py [--preset paper]   (or `make bench`)
Each script also runs alone; see its docstring. Run on an otherwise idle machine. A script that fails is recorded
with its exit status and error, and the run then exits non-zero.
"""
import argparse, datetime, json, os, platform, subprocess, sys
from pathlib import Path

import torch

from walt_paper.data import atomic_write_bytes, data_dir, repo_root
from walt_paper.train import git_sha

HERE = Path(__file__).resolve().parent


def scripts(preset):
    return [('Denoiser and autoencoder training step against fp32 matmul', ['bench_train.py']),
            ('Where the denoiser step spends its time (torch.profiler)', ['bench_profile.py', '--preset', preset]),
            ('Denoiser against diffusers Latte (same width, depth, heads, tokens, loss)', ['bench_peers.py', '--preset', preset]),
            ('Probe training step per task against fp32 matmul, and full-resolution depth evaluation (the study\'s largest costs)', ['bench_probes.py', '--preset', preset]),
            ('Feature extraction, autoencoder, data', ['bench_pipeline.py', '--preset', preset]),
            ('World rendering', ['bench_data.py'])]


def study_times():
    "The recorded wall times of `walt-paper models` and `walt-paper run` per preset, as Markdown lines."
    lines = []
    for preset in ('smoke', 'quick', 'paper'):
        models, runs = data_dir('runs', preset)/'timing.json', data_dir('runs', preset, 'notebooks')/'timing.json'
        if models.exists():
            m = json.loads(models.read_text())
            stages = m.get('last_training') or {}
            if stages: lines.append(f"- {preset}: `walt-paper models` seconds per stage {stages.get('seconds')} for steps "
                                    f"{stages.get('steps_run')}, {stages.get('torch_threads')} torch threads, git {stages.get('git_sha')}")
        if runs.exists():
            r = json.loads(runs.read_text()); last = r.get('last_call', {})
            lines.append(f"- {preset}: `walt-paper run` last call {last.get('wall_s')} s wall with {last.get('jobs')} jobs on "
                         f"{last.get('cores')} cores, peak kernel memory {last.get('peak_kernel_rss_mb')} MB, git {last.get('git_sha')}; "
                         f"per notebook (s): {r.get('notebooks')}")
    return lines or ['- no recorded study runs yet (`make paper` records them)']


def cpu_model() -> str:
    "The processor's name and its widest vector units (every figure here depends on them)."
    name, flags = platform.processor() or 'unknown processor', set()
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'): name = line.split(':', 1)[1].strip()
            if line.startswith('flags'): flags = set(line.split(':', 1)[1].split())
    except OSError: pass
    units = [f for f in ('avx2', 'avx512f', 'amx_tile') if f in flags]
    return f"{name}{' with ' + ', '.join(units) if units else ''}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--preset', default='paper')
    args = parser.parse_args()
    head = [f"# Benchmarks", "",
            f"`make bench` (tests/benchmarks/run_all.py --preset {args.preset}); git {git_sha()}, "
            f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {cpu_model()} ({platform.machine()}), {os.cpu_count()} cores, "
            f"torch {torch.__version__}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}.", ""]
    body, failed = [], []
    for title, cmd in scripts(args.preset):
        print(f"== {title}", flush=True)
        out = subprocess.run([sys.executable, str(HERE/cmd[0]), *cmd[1:]], capture_output=True, text=True, cwd=repo_root())
        print(out.stdout, end=''); print(out.stderr[-2000:], end='', file=sys.stderr)
        body += [f"## {title}", "", f"`python tests/benchmarks/{' '.join(cmd)}`" + ('' if out.returncode == 0 else f" (exit {out.returncode})"),
                 "", "```", out.stdout.strip() or out.stderr.strip()[-1500:], "```", ""]
        if out.returncode: failed.append(f"{cmd[0]} (exit {out.returncode})")
    body += ["## The whole study (recorded by the commands that ran it)", "", *study_times(), ""]
    path = repo_root()/'figures'/'benchmarks.md'
    atomic_write_bytes(path, '\n'.join(head + body).encode())
    print(f"wrote {path}")
    if failed: sys.exit(f"failed: {', '.join(failed)}; their output is in {path}")   # make bench fails too


if __name__ == '__main__':
    main()
