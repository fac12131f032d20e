"""Benchmark: the probes, the study's largest cost on a CPU (the notebooks train hundreds of them). For each kind of
probe at a preset's feature shape and recipe (`walt_paper.study.PROBE_SETTINGS`), one training step of its
learning-rate grid: FLOPs (torch's FlopCounterMode, forward and backward), seconds per step (median), the achieved
GFLOP/s against a large fp32 matmul measured in the same run, and what training one probe (seeds x epochs x steps per
epoch, evaluation not counted) costs at that rate; beside it the same step with every linear layer through F.linear
(MKL's sgemm), the route before `walt_paper.model.linear`'s oneDNN one (timed alternately in the same run).
The matmul reference is the faster of torch.mm and oneDNN's (bench_train.matmul_routes). Then the largest evaluation cost: the depth decoder scoring every
pixel of an evaluation batch, decoded a few frames per pass (as the probes do) and in one pass, with what a probe's
evaluations cost each way.

Run:  .venv/bin/python tests/benchmarks/bench_probes.py [--preset paper] [--steps 5]
Features and targets are random of the preset's shapes: a probe step's cost does not depend on their values.
Run it on an otherwise idle machine.
"""
import argparse, contextlib, inspect, math, statistics, time

import torch
from torch.utils.flop_counter import FlopCounterMode

from bench_train import describe_matmul, linears_through_f_linear, matmul_routes
from walt_paper.data import PRESETS
from walt_paper.model import WALT_SIZES
from walt_paper.pipeline import STUDY
from walt_paper.probes import ProbeGrid, build_probe, task_spec, train_probe
from walt_paper.study import PROBE_SETTINGS

TASKS = ('category', 'depth', 'camera_pose', 'point_tracking', 'box_tracking')


def random_targets(task, n, frames, size, points=16):
    "Targets of `task`'s shapes (as `probes.task_targets` makes them) for n clips."
    kind = task_spec(task)['probe']
    if kind == 'classify': return {'label': torch.randint(0, task_spec(task)['classes'], (n,))}
    if kind == 'depth': return {'depth': torch.rand(n, frames, size, size) + 1, 'size': size}
    if kind == 'pose': return {'pose': torch.eye(4).repeat(n, frames, 1, 1)}
    positions = torch.rand(n, points, frames, 2 if kind == 'track' else 4) * size
    return {'positions': positions, 'visible': torch.rand(n, points, frames) > 0.2, 'query': positions[:, :, 0], 'size': size}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--preset', default='paper', choices=sorted(PROBE_SETTINGS))
    parser.add_argument('--steps', type=int, default=5)
    args = parser.parse_args()
    recipe, world, study = PROBE_SETTINGS[args.preset], PRESETS[args.preset], STUDY[args.preset]
    frames, grid_side, dim = 1 + (world['frames'] - 1) // 4, world['size'] // 8, WALT_SIZES[study['walt_size']]['width']
    batch, steps_per_epoch = recipe['batch_size'], math.ceil(world['n_train'] / recipe['batch_size'])
    routes = matmul_routes()
    peak = max(routes.values())
    print(f"preset {args.preset}: features ({frames}, {grid_side}, {grid_side}, {dim}) per clip, batch {batch}, "
          f"{len(recipe['lrs'])} lrs x {len(recipe['seeds'])} seeds x {recipe['epochs']} epochs x {steps_per_epoch} steps; "
          f"torch threads {torch.get_num_threads()}\n{describe_matmul(routes)}")
    print(f"{'task':16s} {'GFLOP/step':>10s} {'s/step':>8s} {'GFLOP/s':>8s} {'of matmul':>9s} {'train one probe (s)':>20s} "
          f"{'s/step, F.linear (before)':>27s}")
    features = torch.randn(batch, frames, grid_side, grid_side, dim)
    for task in TASKS:
        targets = random_targets(task, batch, frames, world['size'])
        grid = ProbeGrid(task, dim, frames, recipe['lrs'], 0, 10 ** 6, world['size'], task_spec(task).get('classes'),
                         probe_kwargs=recipe['probe_kwargs'], depth_pixels=recipe['depth_pixels'], track_points=recipe['track_points'])
        with FlopCounterMode(display=False) as counter: grid.step(features, targets)
        times = {True: [], False: []}          # linear layers through oneDNN (as built) and through F.linear, step by step in turn
        for _ in range(args.steps + 1):
            for onednn in (True, False):
                with (contextlib.nullcontext() if onednn else linears_through_f_linear()):
                    start = time.perf_counter(); grid.step(features, targets); times[onednn].append(time.perf_counter() - start)
        flops, seconds, aten = counter.get_total_flops(), statistics.median(times[True][1:]), statistics.median(times[False][1:])
        probe = seconds * steps_per_epoch * recipe['epochs'] * len(recipe['seeds'])
        print(f"{task:16s} {flops / 1e9:10.2f} {seconds:8.3f} {flops / seconds / 1e9:8.1f} {flops / seconds / 1e9 / peak:8.0%} {probe:20.0f} "
              f"{aten:27.3f}")
    # evaluation: the depth decoder scores every pixel of every frame (training samples `depth_pixels` of them), the
    # largest evaluation cost of the study; `DepthDecoder.forward` decodes `chunk` queries per pass
    evaluate = inspect.signature(train_probe).parameters['eval_batch_size'].default   # clips per evaluation batch
    decoder = build_probe('depth', dim, frames, world['size'], **recipe['probe_kwargs']).eval()
    clips = torch.randn(evaluate, frames, grid_side, grid_side, dim)
    with torch.no_grad():
        timed = {}
        for name, chunk in (('a few frames per pass (default)', None), ('all frames in one pass', 10 ** 12)):
            kwargs = {} if chunk is None else dict(chunk=chunk)
            decoder(clips[:2], **kwargs)
            times = []
            for _ in range(3):
                start = time.perf_counter(); maps = decoder(clips, **kwargs); times.append(time.perf_counter() - start)
            timed[name] = (statistics.median(times), maps)
    (fast, maps_fast), (slow, maps_slow) = timed.values()
    per_probe = len(recipe['seeds']) * (len(recipe['lrs']) * world['n_val'] + world['n_test']) / evaluate
    print(f"depth evaluation at {world['size']}^2, {evaluate} clips x {frames} frames (median of 3): " +
          ", ".join(f"{name} {seconds:.2f} s" for name, (seconds, _) in timed.items()) +
          f" ({slow / fast:.1f}x; maps equal within {(maps_fast - maps_slow).abs().max():.1e}); one probe's evaluations "
          f"(val for each lr, test once, per seed): {per_probe * fast:.0f} s (one pass: {per_probe * slow:.0f} s)")


if __name__ == '__main__':
    main()
