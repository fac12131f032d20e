"""Benchmark: how fast the embedded world renders (clips/s) at each preset's clip size.

Run: .venv/bin/python tests/benchmarks/bench_data.py [--clips N] [--repeats R]
Prints one line per size and thread count (the fastest of R renders): one thread (how the world rendered before `render_world` took
`threads`) and one per core (its default); rendering happens once per dataset (then it is cached), so this
bounds the cost of `walt-paper data`, not of training.
"""
import argparse, os, platform, time

import torch  # noqa: F401  (import order: torch's OpenMP before numpy's BLAS, as in the package)
import numpy as np

from walt_paper.data import PRESETS, render_world, world_textures


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--clips', type=int, default=32)
    parser.add_argument('--repeats', type=int, default=3)
    args = parser.parse_args()
    textures = world_textures()
    print(f"# world rendering, {os.cpu_count()} cores, {platform.processor() or platform.machine()}")
    for size in sorted({p['size'] for p in PRESETS.values()}):
        render_world(2, seed=0, size=size, textures=textures)          # warm-up
        for threads in sorted({1, os.cpu_count() or 1}):
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                render_world(args.clips, seed=1, size=size, textures=textures, threads=threads)
                times.append(time.perf_counter() - start)
            seconds = min(times)
            print(f"render_world size={size} frames=17, {threads} thread{'s' * (threads > 1)}, best of {args.repeats}: {args.clips / seconds:.1f} clips/s "
                  f"({1000 * seconds / args.clips:.1f} ms/clip, {args.clips * 17 / seconds:.0f} frames/s)")


if __name__ == '__main__':
    main()
