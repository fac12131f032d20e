"""Benchmark: training-step throughput of the denoiser and the autoencoder against this machine's
fp32 matmul throughput, measured in the same run; optionally the wall time of training a preset.

Run:  .venv/bin/python tests/benchmarks/bench_train.py [--steps 5] [--no-compile] [--full PRESET]
For each preset it prints the step's FLOPs (counted by torch's FlopCounterMode: the
self-conditioning pass, the forward and the backward; this script adds the formula torch lacks for the
CPU kernel of fused attention), seconds per step (median) and the
achieved GFLOP/s as a fraction of a large fp32 matmul's. The matmul is measured by both routes torch has on a CPU
(torch.mm, which is MKL's sgemm on x86, and a 1 x 1 convolution, which is oneDNN) and the faster is the reference: on
AMD processors MKL runs its AVX2 code while oneDNN uses AVX-512, about twice as fast. At the paper preset the
denoiser step is also timed with its linear layers through F.linear, the route before walt_paper.model.linear's
oneDNN one. Then the paper preset's V-WALT step under
torch.compile (inductor) beside the same step eager, with the compile time (--no-compile skips it). --full trains the preset's models for
real (resuming what exists in data/runs/<preset>) and prints each stage's wall time.
Run it on an otherwise idle machine: two busy cores halve every number.
"""
import argparse, contextlib, os, platform, statistics, time, warnings

import torch
from torch.utils.flop_counter import FlopCounterMode, register_flop_formula, sdpa_backward_flop_count, sdpa_flop_count

from walt_paper.data import PRESETS
import walt_paper.model as walt_model
from walt_paper.model import build_autoencoder, build_walt, count_parameters, linear
from walt_paper.pipeline import STUDY, LATENT_FRAMES, autoencoder_loss, walt_loss
from walt_paper.train import step_generators

# torch's FlopCounterMode has formulas for the GPU kernels of scaled_dot_product_attention but not for the CPU ones,
# which the denoiser's no-grad self-conditioning pass and the probes' cross-attention run: without these their products
# (2% of the paper denoiser step) went uncounted. bench_profile and bench_probes import this module, so they count them too.
if torch.ops.aten._scaled_dot_product_flash_attention_for_cpu not in torch.utils.flop_counter.flop_registry:   # (once per process)
    @register_flop_formula(torch.ops.aten._scaled_dot_product_flash_attention_for_cpu)
    def _cpu_sdpa_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
        return sdpa_flop_count(query_shape, key_shape, value_shape)

    @register_flop_formula(torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward)
    def _cpu_sdpa_backward_flops(grad_out_shape, query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
        return sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


def matmul_routes(n=2048, repeats=10) -> dict:
    """GFLOP/s of an n^3 fp32 matrix product by each route torch offers on this CPU: `torch.mm` (MKL's sgemm on x86)
    and the 1 x 1 convolution `walt_paper.model.linear` uses for large products (oneDNN). Best of `repeats`."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    routes = {'torch.mm (MKL)': lambda: a @ b, '1x1 conv (oneDNN)': lambda: linear(a, b, via_conv=True)}
    result = {}
    for name, product in routes.items():
        for _ in range(3): product()
        times = []
        for _ in range(repeats):
            start = time.perf_counter(); product(); times.append(time.perf_counter() - start)
        result[name] = 2 * n ** 3 / min(times) / 1e9
    return result


def matmul_gflops(n=2048, repeats=10):
    "This machine's fp32 matmul throughput: the faster of the routes in `matmul_routes` (the reference of the 70% target)."
    return max(matmul_routes(n, repeats).values())


def describe_matmul(routes: dict, n: int = 2048) -> str:
    return (f"fp32 matmul {n}^3: " + ", ".join(f"{name} {g:.1f} GFLOP/s" for name, g in routes.items())
            + f"; the reference below is the faster, {max(routes.values()):.1f} GFLOP/s")


@contextlib.contextmanager
def linears_through_f_linear():
    "Every `walt_paper.model.linear` call takes F.linear inside the block (the route before the oneDNN one)."
    saved = walt_model.ONEDNN_MIN_PRODUCTS
    walt_model.ONEDNN_MIN_PRODUCTS = float('inf')
    try: yield
    finally: walt_model.ONEDNN_MIN_PRODUCTS = saved


def time_step(model, loss_fn, batch, steps, both_routes=False):
    """FLOPs of a training step and its median seconds over `steps` steps after one warm-up; with `both_routes`, also
    the median with every linear layer through F.linear, the two routes taking turns step by step."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    gens = lambda s: step_generators(0, s, range(len(batch)))
    with FlopCounterMode(display=False) as counter:
        loss_fn(model, batch, gens(0), 0).backward()
    flops = counter.get_total_flops(); opt.zero_grad(set_to_none=True)
    routes = (contextlib.nullcontext, linears_through_f_linear) if both_routes else (contextlib.nullcontext,)
    times = [[] for _ in routes]
    for s in range(steps + 1):
        for route, record in zip(routes, times):
            with route():
                start = time.perf_counter()
                loss = loss_fn(model, batch, gens(s), s); loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
                record.append(time.perf_counter() - start)
    medians = [statistics.median(t[1:]) for t in times]
    return (flops, *medians)


def compiled_against_eager(preset, steps):
    "Seconds per V-WALT training step of `preset` eager, then under torch.compile (inductor) on the same model (as the eager steps left it) and batch."
    study, side = STUDY[preset], PRESETS[preset]['size'] // 8
    torch.manual_seed(0)
    model = build_walt(study['walt_size'], 'video')
    batch = torch.randn(study['walt_batch'], 8, LATENT_FRAMES + PRESETS[preset]['frames'], side, side)
    loss_fn = walt_loss('video', image_fraction=0.0)
    _, eager = time_step(model, loss_fn, batch, steps)
    start = time.perf_counter()
    # FlopCounterMode (above) leaves module hooks that torch.compile warns about; they only count, so the warning is noise here
    warnings.filterwarnings('ignore', message='Using `torch.compile')
    try:
        compiled = torch.compile(model)
        loss_fn(compiled, batch, step_generators(0, 0, range(len(batch))), 0).backward()   # compiles forward and backward
        compile_s = time.perf_counter() - start
        _, fast = time_step(compiled, loss_fn, batch, max(steps, 5))   # the median skips a step that recompiles
    except Exception as e:   # inductor needs a C++ compiler; say why it could not run rather than stop the benchmark
        print(f"{preset:5s} video-walt torch.compile: could not run ({type(e).__name__}: {str(e).splitlines()[0][:160]})")
        return
    print(f"{preset:5s} video-walt {study['walt_size']} torch.compile (inductor): {fast * 1000:.0f} ms/step against eager "
          f"{eager * 1000:.0f} ms/step: {eager / fast:.2f}x the eager speed, after {compile_s:.0f} s of compiling")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--steps', type=int, default=5)
    parser.add_argument('--full', choices=sorted(PRESETS), default=None)
    parser.add_argument('--no-compile', action='store_true', help="skip the torch.compile comparison")
    args = parser.parse_args()
    routes = matmul_routes()
    peak = max(routes.values())
    print(f"# training throughput, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{platform.machine()}\n{describe_matmul(routes)}")
    for preset, study in STUDY.items():
        side = PRESETS[preset]['size'] // 8
        for objective in ('image', 'video'):
            torch.manual_seed(0)
            model = build_walt(study['walt_size'], objective)
            batch = torch.randn(study['walt_batch'], 8, LATENT_FRAMES + PRESETS[preset]['frames'], side, side)
            # an I-WALT step is an image step; for V-WALT time a clip step (the image steps are I-WALT's)
            loss_fn = walt_loss(objective, image_fraction=0.0)
            flops, sec, *aten = time_step(model, loss_fn, batch, args.steps, both_routes=preset == 'paper')
            print(f"{preset:5s} {objective}-walt {study['walt_size']:5s} ({count_parameters(model) / 1e6:.2f}M) batch {study['walt_batch']} "
                  f"latents {side}x{side}: {flops / 1e9:.1f} GFLOP/step, {sec * 1000:.0f} ms/step, "
                  f"{flops / sec / 1e9:.1f} GFLOP/s = {flops / sec / 1e9 / peak:.0%} of matmul")
            if aten:   # the same step with every linear layer through F.linear (MKL), in turn with it: what the oneDNN route gives
                aten = aten[0]
                print(f"{preset:5s} {objective}-walt {study['walt_size']:5s} the same step, linear layers through F.linear (MKL): "
                      f"{aten * 1000:.0f} ms/step, {flops / aten / 1e9:.1f} GFLOP/s = {flops / aten / 1e9 / peak:.0%} of matmul; "
                      f"the oneDNN route is {aten / sec:.2f}x faster")
        torch.manual_seed(0)
        ae = build_autoencoder(study['ae_size'])
        clips = torch.randint(0, 255, (study['ae_batch'], PRESETS[preset]['frames'], PRESETS[preset]['size'], PRESETS[preset]['size'], 3), dtype=torch.uint8)
        flops, sec = time_step(ae, autoencoder_loss(study['ae_crop'], study['ae_frames']), clips, args.steps)
        print(f"{preset:5s} autoencoder {study['ae_size']} batch {study['ae_batch']} crops {study['ae_frames']}x{study['ae_crop']}^2: "
              f"{flops / 1e9:.1f} GFLOP/step, {sec * 1000:.0f} ms/step, {flops / sec / 1e9:.1f} GFLOP/s = {flops / sec / 1e9 / peak:.0%} of matmul")
    if not args.no_compile:
        compiled_against_eager('paper', args.steps)
    if args.full:
        from walt_paper.pipeline import train_models
        start = time.time()
        timing = train_models(args.full, progress=False)
        print(f"full training of preset {args.full}: {timing} -> {time.time() - start:.0f} s in all")


if __name__ == '__main__':
    main()
