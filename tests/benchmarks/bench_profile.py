"""Benchmark: where a denoiser training step's time goes (torch.profiler, self CPU time per operator,
grouped by kind), so that the gap between the step's GFLOP/s and a large matmul's can be read off.

Run:  .venv/bin/python tests/benchmarks/bench_profile.py [--preset paper] [--objective video] [--steps 3]
The step is the one bench_train.py times (the preset's size and batch, a V-WALT clip step with
self-conditioning). It then splits the step into its matrix products (FLOPs counted by torch's
FlopCounterMode, time by the profiler) and everything else, and prints what the 70%-of-matmul
target would leave for the rest. Run it on an otherwise idle machine.
"""
import argparse, collections, os, platform

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from walt_paper.data import PRESETS
from walt_paper.model import build_walt
from walt_paper.pipeline import LATENT_FRAMES, STUDY, walt_loss
from walt_paper.train import step_generators

from bench_train import matmul_gflops   # the reference of the 70% target, as bench_train measures it (the faster route)

# operator -> kind; everything unlisted is 'other'
KINDS = {
    # linear layers run as 1 x 1 convolutions through oneDNN (walt_paper.model.linear): their kernels are products too
    # (and PyTorch's own convolution kernels, should it not hand one to oneDNN)
    'matmul (linear, attention products)': ('aten::mm', 'aten::addmm', 'aten::bmm', 'aten::baddbmm',
                                            'aten::mkldnn_convolution', 'aten::convolution_backward',
                                            'aten::_slow_conv2d_forward', 'aten::_slow_conv2d_backward'),
    'fused attention (SDPA)': ('aten::_scaled_dot_product_flash_attention_for_cpu',
                               'aten::_scaled_dot_product_flash_attention_for_cpu_backward'),
    'GELU / SiLU': ('aten::gelu', 'aten::gelu_backward', 'aten::silu', 'aten::silu_backward'),
    'layer norm': ('aten::native_layer_norm', 'aten::native_layer_norm_backward'),
    'softmax': ('aten::_softmax', 'aten::_softmax_backward_data'),
    'copies and layout (rearrange, cat, pad)': ('aten::copy_', 'aten::cat', 'aten::constant_pad_nd', 'aten::clone'),
    'elementwise (add, mul, addcmul, sum)': ('aten::add', 'aten::add_', 'aten::mul', 'aten::mul_', 'aten::addcmul',
                                             'aten::sum', 'aten::div', 'aten::sub', 'aten::neg', 'aten::where'),
    'optimizer (AdamW)': ('aten::_fused_adamw_', 'aten::lerp_', 'aten::addcdiv_', 'aten::sqrt', 'aten::_foreach_mul_',
                          'aten::_foreach_add_', 'aten::_foreach_lerp_', 'aten::_foreach_addcdiv_', 'aten::_foreach_sqrt'),
}
MATMUL_OPS = KINDS['matmul (linear, attention products)']
# FlopCounterMode names a convolution by its dispatcher op (aten::convolution), the profiler by the kernel that ran
MATMUL_FLOP_OPS = MATMUL_OPS + ('aten::convolution',)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--preset', choices=sorted(PRESETS), default='paper')
    parser.add_argument('--objective', choices=('image', 'video'), default='video')
    parser.add_argument('--steps', type=int, default=3)
    args = parser.parse_args()
    study, side = STUDY[args.preset], PRESETS[args.preset]['size'] // 8
    torch.manual_seed(0)
    model = build_walt(study['walt_size'], args.objective)
    batch = torch.randn(study['walt_batch'], 8, LATENT_FRAMES + PRESETS[args.preset]['frames'], side, side)
    loss_fn = walt_loss(args.objective, image_fraction=0.0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step(s):
        loss_fn(model, batch, step_generators(0, s, range(len(batch))), s).backward(); opt.step(); opt.zero_grad(set_to_none=True)

    with FlopCounterMode(display=False) as counter: step(0)                  # also the first warm-up step
    counts = {'aten::' + str(op).split('.')[-1]: n for op, n in counter.get_flop_counts()['Global'].items()}   # profiler's names
    step_flops, matmul_flops = sum(counts.values()), sum(counts.get(op, 0) for op in MATMUL_FLOP_OPS)
    step(1)                                                                  # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for s in range(args.steps): step(s)
    ops = [(e.key, e.self_cpu_time_total, e.count) for e in prof.key_averages()]
    total = sum(t for _, t, _ in ops)
    kind_of = {op: kind for kind, names in KINDS.items() for op in names}
    by_kind = collections.Counter()
    for op, t, _ in ops: by_kind[kind_of.get(op, 'other')] += t
    print(f"# profile of one {args.objective}-walt {study['walt_size']} training step, preset {args.preset} (batch {study['walt_batch']}, "
          f"latents {side}x{side}): {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.machine()}")
    step_ms = total / args.steps / 1e3                                       # profiler times are microseconds
    print(f"self CPU time {step_ms:.0f} ms per step (profiled, {args.steps} steps)")
    for kind, t in by_kind.most_common():
        print(f"  {kind:42s} {t / total:6.1%}")
    peak = matmul_gflops()
    matmul_ms = sum(t for op, t, _ in ops if op in MATMUL_OPS) / args.steps / 1e3
    other_ms = step_ms - matmul_ms
    budget_ms = step_flops / (0.7 * peak * 1e9) * 1e3                       # the whole step at 70% of the large matmul
    print(f"matrix products in the step: {matmul_flops / 1e9:.1f} GFLOP in {matmul_ms:.0f} ms = "
          f"{matmul_flops / matmul_ms / 1e6:.0f} GFLOP/s, {matmul_flops / matmul_ms / 1e6 / peak:.0%} of a 2048^3 matmul by the faster route "
          f"({peak:.0f} GFLOP/s, this run); everything else {other_ms:.0f} ms ({other_ms / step_ms:.0%} of the step)")
    if budget_ms > matmul_ms:
        print(f"70% of matmul means a step of at most {budget_ms:.0f} ms: with the products as fast as now, at most "
              f"{budget_ms - matmul_ms:.0f} ms for everything else (now {other_ms:.0f} ms)")
    else:
        print(f"70% of matmul means a step of at most {budget_ms:.0f} ms: the products alone take {matmul_ms:.0f} ms now, "
              f"so the target needs them faster as well as everything else ({other_ms:.0f} ms) gone")
    print("largest operators:")
    for op, t, n in sorted(ops, key=lambda o: -o[1])[:8]:
        print(f"  {op:52s} {t / total:6.1%}  ({n // args.steps} calls/step)")


if __name__ == '__main__':
    main()
