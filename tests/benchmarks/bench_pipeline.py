"""Benchmark: the study's other costs, each beside its reference: feature extraction of every block
against one forward pass; the autoencoder's encode throughput and training step in the default and
the channels_last_3d memory format; real-video decoding with decord against PyAV on the same clip,
`datasets.video_folder` (a Kinetics-style folder of the real videos `sources.video_files` finds) on one
thread and on every core, beside the loop it replaced, the study's real clips (every video decoded once, then cut in memory) and world rendering, against
the clips per second the denoiser's training consumes; what each probe call reads
from the caches before it trains, read every time against kept in the process (`load_npz`'s memo); a forward
pass with glibc's allocator as it ships against as `walt_paper.data.tune_malloc` sets it.

Run:  .venv/bin/python tests/benchmarks/bench_pipeline.py [--preset paper]
Timing uses freshly initialised models; the probe-input line needs the preset's world and trained models
(`walt-paper data` and `walt-paper models`) and is skipped without them.
Run it on an otherwise idle machine.
"""
import argparse, csv, os, platform, statistics, subprocess, sys, tempfile, time
from pathlib import Path

import cv2  # noqa: F401  (before decord: decord bundles an old zlib)
import numpy as np
import torch

from walt_paper import datasets, probes, sources
from walt_paper.data import PRESETS, available_cpus, render_world, world_textures
from walt_paper.model import build_autoencoder, build_walt
from walt_paper.pipeline import LATENT_FRAMES, STUDY, autoencoder_loss, run_dir
from walt_paper.train import step_generators


def best_of(fn, repeats=3):
    fn(); times = []
    for _ in range(repeats):
        start = time.perf_counter(); fn(); times.append(time.perf_counter() - start)
    return min(times)


def decode_decord(path, index, side):
    return sources.read_video(path, index, side=side)


def decode_pyav(path, index, side):
    "The same frames with PyAV: decode sequentially up to the last index, keep those at `index`, same resize."
    import av
    wanted, frames = set(int(i) for i in index), []
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in wanted: frames.append(frame.to_ndarray(format='rgb24'))
            if i >= max(wanted): break
    return sources.square_resize(np.stack(frames), side)


def video_folder_before(paths, frames, size, stride):
    "`datasets.video_folder`'s decoding loop before git 53d1070: each file opened twice (its length, then its frames), one at a time."
    clips = []
    for path in paths:
        length = sources.video_length(path)
        first = max(0, (length - ((frames - 1) * stride + 1)) // 2)
        clips.append(sources.read_video(path, np.minimum(first + np.arange(frames) * stride, length - 1), side=size))
    return np.stack(clips)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--preset', choices=sorted(PRESETS), default='paper')
    args = parser.parse_args()
    preset, study = args.preset, STUDY[args.preset]
    size, side = PRESETS[preset]['size'], PRESETS[preset]['size'] // 8
    print(f"# pipeline, preset {preset}: {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.machine()}")

    # feature extraction: all blocks in one call vs one plain forward pass
    torch.manual_seed(0)
    for objective in ('image', 'video'):
        walt = build_walt(study['walt_size'], objective).eval()
        latents = torch.randn(32, 8, LATENT_FRAMES, side, side)
        t = probes.time_feature_extraction(walt, latents, repeats=3)
        print(f"features {objective}-walt {study['walt_size']}, 32 clips: every block ({walt.config.depth + 1}) {t['extract_s']:.2f} s, "
              f"one forward {t['forward_s']:.2f} s: ratio {t['ratio']:.2f} (target <= 1.1)")

    # the allocator (walt_paper.data.tune_malloc): the same timing in two fresh processes, glibc's malloc as it ships
    # (WALT_MALLOC=default) and as the package sets it on import
    script = ("import torch; from walt_paper.model import build_walt; from walt_paper import probes, data; torch.manual_seed(0); "
              f"w = build_walt({study['walt_size']!r}, 'video').eval(); "
              f"t = probes.time_feature_extraction(w, torch.randn(32, 8, {LATENT_FRAMES}, {side}, {side}), repeats=3); "
              "print(data.MALLOC_TUNED, t['forward_s'], t['extract_s'])")
    timed = {}
    for name, setting in (('as glibc ships it', 'default'), ('tuned (tune_malloc)', 'tuned')):
        out = subprocess.run([sys.executable, '-c', script], env={**os.environ, 'WALT_MALLOC': setting}, capture_output=True, text=True, check=True)
        tuned, forward, extract = out.stdout.split()[-3:]
        if tuned != str(setting == 'tuned'):   # e.g. not glibc: say so rather than print two alike as a comparison
            raise SystemExit(f"malloc comparison: the child with WALT_MALLOC={setting} reports MALLOC_TUNED={tuned}")
        timed[name] = (float(forward), float(extract))
    print(f"malloc, video-walt {study['walt_size']} on 32 clips, one forward / every block: " +
          ", ".join(f"{name} {f:.2f} / {e:.2f} s" for name, (f, e) in timed.items()) +
          f" ({timed['as glibc ships it'][0] / timed['tuned (tune_malloc)'][0]:.2f}x faster forward tuned)")

    # autoencoder: encode throughput and a training step, default vs channels_last_3d
    ae = build_autoencoder(study['ae_size']).eval()
    clips = torch.rand(8, 3, PRESETS[preset]['frames'], size, size) * 2 - 1
    loss_fn = autoencoder_loss(study['ae_crop'], study['ae_frames'])
    batch = torch.randint(0, 255, (study['ae_batch'], PRESETS[preset]['frames'], size, size, 3), dtype=torch.uint8)
    for fmt in (torch.contiguous_format, torch.channels_last_3d):
        model, x = ae.to(memory_format=fmt), clips.to(memory_format=fmt)
        with torch.no_grad(): enc = best_of(lambda: model.encode(x))
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        def step():
            loss_fn(model.train(), batch, step_generators(0, 0, range(len(batch))), 0).backward(); opt.step(); opt.zero_grad(set_to_none=True)
        train = best_of(step); model.eval()
        print(f"autoencoder {study['ae_size']} ({'channels_last_3d' if fmt is torch.channels_last_3d else 'default'}): encode {len(x) / enc:.1f} clips/s "
              f"of {PRESETS[preset]['frames']} x {size}^2; training step (batch {study['ae_batch']}, crops {study['ae_frames']} x {study['ae_crop']}^2) {train * 1000:.0f} ms")

    # what training consumes: clips per second of a V-WALT step at the preset's batch
    walt = build_walt(study['walt_size'], 'video')
    from walt_paper.pipeline import walt_loss
    data = torch.randn(study['walt_batch'], 8, LATENT_FRAMES + PRESETS[preset]['frames'], side, side)
    opt = torch.optim.AdamW(walt.parameters(), lr=1e-4); loss = walt_loss('video', image_fraction=0.0)
    def walt_step():
        loss(walt, data, step_generators(0, 0, range(len(data))), 0).backward(); opt.step(); opt.zero_grad(set_to_none=True)
    consumed = study['walt_batch'] / best_of(walt_step)
    print(f"training consumes {consumed:.1f} clips/s (V-WALT {study['walt_size']}, batch {study['walt_batch']})")

    # data: world rendering (once per dataset, then cached) and real-video decoding
    textures = world_textures(); n = 32   # the best of three renders, as the training step above is the best of three
    render = n / best_of(lambda: render_world(n, seed=1, size=size, textures=textures), repeats=3)
    print(f"world rendering {size}^2 x 17 frames ({os.cpu_count()} threads), {n} clips, best of 3: {render:.1f} clips/s = "
          f"{render / consumed:.1f}x what training consumes (target >= 5x)")
    video = sources.video_files().get('vtest') or next(iter(sources.video_files().values()))
    index = np.arange(17) * 2 + 10
    a, b = decode_decord(video, index, size), decode_pyav(video, index, size)
    assert a.shape == b.shape, (a.shape, b.shape)
    agree = float(np.abs(a.astype(int) - b.astype(int)).mean())
    for name, fn in (('decord', decode_decord), ('PyAV', decode_pyav)):
        rate = 1 / best_of(lambda: fn(video, index, size))
        print(f"decode {video.name} 17 frames stride 2 -> {size}^2 with {name}: {rate:.1f} clips/s = {rate / consumed:.1f}x what training consumes")
    print(f"decord and PyAV frames differ by {agree:.2f}/255 on average (the same clip)")
    # a Kinetics-style folder: every real video here, its middle 17 frames at stride 2, as video_folder reads a benchmark
    files = dict(sorted(sources.video_files().items()))
    with tempfile.TemporaryDirectory() as folder:
        labels = Path(folder)/'labels.csv'
        with open(labels, 'w', newline='') as f: csv.writer(f).writerows([('path', 'label'), *((str(p), n) for n, p in files.items())])
        rates = {t: len(files) / best_of(lambda: datasets.video_folder(folder, labels, frames=17, size=size, stride=2, threads=t))
                 for t in sorted({1, available_cpus()})}
        same = np.array_equal(datasets.video_folder(folder, labels, frames=17, size=size, stride=2)['video'],
                              video_folder_before(files.values(), 17, size, 2))
    before = len(files) / best_of(lambda: video_folder_before(files.values(), 17, size, 2))
    print(f"video_folder, {len(files)} real videos ({', '.join(files)}), the middle 17 frames at stride 2 -> {size}^2, best of 3: "
          + ', '.join(f"{t} thread{'s' * (t > 1)} {r:.1f} clips/s = {r / consumed:.1f}x" for t, r in rates.items()) + " what training consumes; "
          f"its loop before git 53d1070 (each file opened twice, one at a time) {before:.1f} clips/s; the same arrays: {same}")
    # the study's own real clips: each video decoded once (cached in data/sources), clips cut from it in memory
    sources.real_videos(side=2 * size); n = 128
    cut = n / best_of(lambda: datasets.playback_speed(n, seed=1, size=size))
    print(f"real clips as the study cuts them (playback_speed: videos decoded once and cached, {n} clips cut in memory at "
          f"{size}^2), best of 3: {cut:.1f} clips/s = {cut / consumed:.1f}x what training consumes")

    # each probe call (study.probe_rows) first reads its inputs from the caches on disk: the world's three splits (the
    # targets, and the latents' cache key), the normalised latents of each split and the model (whose check reads the
    # training latents); load_npz's memo keeps the arrays in the process, WALT_NPZ_MEMO_MB=0 reads them every time
    from walt_paper import pipeline, study
    from walt_paper.data import SPLITS, world_split
    try: study.load_model('video', preset)
    except (FileNotFoundError, ValueError) as e:
        print(f"probe inputs: skipped, no usable V-WALT at preset {preset} ({e})")
        return
    def inputs():
        for split in SPLITS: world_split(split, preset); pipeline.latents(split, preset)
        study.load_model('video', preset)
    saved = os.environ.get('WALT_NPZ_MEMO_MB')
    try:
        os.environ['WALT_NPZ_MEMO_MB'] = '0'
        reread = best_of(inputs)
        os.environ.pop('WALT_NPZ_MEMO_MB')
        kept = best_of(inputs)
    finally:
        if saved is not None: os.environ['WALT_NPZ_MEMO_MB'] = saved
    print(f"probe inputs (3 world splits, their latents, V-WALT), best of 3: read every time {reread:.2f} s, "
          f"kept in the process {kept:.2f} s ({reread / kept:.1f}x)")


if __name__ == '__main__':
    main()
