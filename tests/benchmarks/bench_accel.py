"""Benchmark: the denoiser's training step on an accelerator (or on this CPU): throughput, TFLOP/s and MFU.

Run:  .venv/bin/python tests/benchmarks/bench_accel.py [--device cuda] [--sizes small,base,L] [--objectives image,video]
                                                       [--batch 8] [--steps 10] [--compile] [--out FILE]
      .venv/bin/torchrun --nproc_per_node N tests/benchmarks/bench_accel.py ...   (DDP: a process per GPU over NCCL;
                                                                                  gloo on the CPU)
      (`make bench-gpu` runs both on a CUDA machine: figures/benchmarks-gpu.md, figures/benchmarks-gpu-ddp.md)
The step is the one `walt-paper train` runs, `walt_paper.train.train_step`: bf16 autocast on CUDA (fp32 on the CPU), the
V-WALT clip loss or the I-WALT image loss with self-conditioning, backward, gradient clipping, AdamW, the EMA update;
under torchrun the model is wrapped in DDP as `fit` wraps it. The latents are the paper's: 8 channels, 5 latent frames
(17 pixel frames), 16 x 16 (128 x 128 pixels); `--batch` clips per process. For each size and objective it prints
ms/step, tokens/s (all processes), the step's TFLOP/s per process (FLOPs counted by torch's FlopCounterMode, which
has formulas for the GPU attention kernels) against a large matmul in the step's dtype measured in the same run, and
the MFU against the device's nominal dense peak where `NOMINAL_TFLOPS` knows the device; the peak memory; which
attention kernels ran (flash, memory-efficient, cuDNN, or the math path's batched products); and with --compile the
same step under torch.compile (each model compiled afresh), with its graph breaks and recompilations. Run it on an
otherwise idle machine.
"""
import argparse, copy, datetime, os, statistics, sys, time

import torch
import torch.distributed as dist
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from walt_paper.data import atomic_write_bytes
from walt_paper.model import WALT_SIZES, build_walt, count_parameters
from walt_paper.pipeline import LATENT_FRAMES, walt_loss
from walt_paper.train import TrainConfig, git_sha, step_generators, train_step

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_train import matmul_routes   # registers the FLOP formulas of the CPU attention kernels too
from run_all import cpu_model           # the processor's name and vector units, as figures/benchmarks.md names them

# dense (no sparsity) bf16 tensor-core peaks from the vendors' data sheets, by a fragment of torch.cuda.get_device_name;
# the first fragment found in the name wins, so the specific ones come first
NOMINAL_TFLOPS = (('H100 PCIe', 756.0), ('H100 NVL', 835.0), ('H100', 989.0), ('H200 NVL', 835.0), ('H200', 989.0),
                  ('H800 PCIe', 756.0), ('H800', 989.0), ('A100', 312.0), ('A800', 312.0), ('L40S', 362.0), ('L40', 181.0),
                  ('L4', 121.0))
ATTENTION_OPS = ('scaled_dot_product', 'aten::bmm', 'aten::baddbmm', 'aten::_softmax')   # fused kernels, and the math path's


def nominal_tflops(device: torch.device):
    "(TFLOP/s, name) of the device's nominal dense bf16 peak, or (None, name) for a device not in the table and the CPU."
    if device.type != 'cuda': return None, cpu_model()
    name = torch.cuda.get_device_name(device)
    return next((peak for fragment, peak in NOMINAL_TFLOPS if fragment in name), None), name


def sync(device):
    if device.type == 'cuda': torch.cuda.synchronize(device)


def matmul_tflops(device: torch.device) -> tuple[float, str]:
    "A large matmul in the step's compute dtype, best of 10: bf16 8192^3 on CUDA; on the CPU the faster fp32 route 2048^3."
    if device.type != 'cuda':
        routes = matmul_routes()
        return max(routes.values()) / 1e3, 'fp32 matmul 2048^3 (' + ', '.join(f"{k} {v / 1e3:.3f}" for k, v in routes.items()) + ' TFLOP/s)'
    n = 8192
    a, b = (torch.randn(n, n, device=device, dtype=torch.bfloat16) for _ in range(2))
    for _ in range(3): a @ b
    times = []
    for _ in range(10):
        sync(device); start = time.perf_counter(); a @ b; sync(device); times.append(time.perf_counter() - start)
    return 2 * n ** 3 / min(times) / 1e12, f'bf16 matmul {n}^3'


def attention_kernels(step) -> str:
    "The attention operators one step runs, with their counts (the profiler's names)."
    with profile(activities=[ProfilerActivity.CPU]) as prof: step()
    ops = {e.key: e.count for e in prof.key_averages() if any(k in e.key for k in ATTENTION_OPS)}
    return ', '.join(f"{k} x{n}" for k, n in sorted(ops.items())) or 'none'


def bench_size(size: str, objective: str, args, device, rank: int, world: int, reference: float, nominal) -> list[str]:
    torch.manual_seed(0)
    model = build_walt(size, objective, max_latent_size=16).to(device)
    ema = copy.deepcopy(model).requires_grad_(False)
    net = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel
        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == 'cuda' else None)
    cfg = TrainConfig(lr=1e-4, warmup=1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    batch = torch.randn(args.batch, 8, LATENT_FRAMES + 17, 16, 16, device=device)   # a clip's 5 latent frames beside its 17 frames' own
    loss_fn = walt_loss(objective, image_fraction=0.0)   # V-WALT: a clip step; I-WALT: an image step (its only kind)
    mine = range(rank * args.batch, (rank + 1) * args.batch)

    def step(s, net=net):
        train_step(net, model, ema, optimizer, loss_fn, batch, step_generators(0, s, mine), s, cfg)

    with FlopCounterMode(display=False) as counter: step(0)   # the first warm-up step; FLOPs of this process's share
    flops = counter.get_total_flops()
    step(1)
    kernels = attention_kernels(lambda: step(2))

    def median_seconds(run):
        times = []
        for s in range(args.steps):
            sync(device); start = time.perf_counter(); run(s); sync(device); times.append(time.perf_counter() - start)
        seconds = torch.tensor(statistics.median(times), dtype=torch.float64, device=device)
        if world > 1: dist.all_reduce(seconds, op=dist.ReduceOp.MAX)   # the slowest process sets the pace
        return float(seconds)

    if device.type == 'cuda': torch.cuda.reset_peak_memory_stats(device)
    seconds = median_seconds(step)
    memory = f", peak memory {torch.cuda.max_memory_allocated(device) / 2 ** 30:.1f} GiB" if device.type == 'cuda' else ''
    tokens = args.batch * LATENT_FRAMES * 16 * 16
    achieved = flops / seconds / 1e12
    mfu = f", MFU {achieved / nominal:.0%} of the nominal {nominal:.0f}" if nominal else ''
    lines = [f"{size:5s} {objective}-walt ({count_parameters(model) / 1e6:.1f}M params), batch {args.batch} x {LATENT_FRAMES} x 16 x 16 = "
             f"{tokens} tokens per process: {seconds * 1000:.1f} ms/step, {tokens * world / seconds:.0f} tokens/s in all, "
             f"{flops / 1e12:.3f} TFLOP/step, {achieved:.3f} TFLOP/s per process = {achieved / reference:.0%} of the matmul{mfu}{memory}",
             f"      attention operators per step: {kernels}"]
    if args.compile:
        from torch._dynamo.utils import counters
        torch._dynamo.reset()   # each model compiles afresh: the previous models' graphs would count against the recompile limit
        counters.clear()
        start = time.perf_counter()
        try:
            compiled = torch.compile(net)
            step(3, net=compiled); sync(device)
            compile_s = time.perf_counter() - start
            fast = median_seconds(lambda s: step(s, net=compiled))
        # inductor needs a C++ compiler (CPU) or Triton (CUDA), and may run out of memory: say why rather than stop;
        # anything else is a bug here and stops the benchmark
        except (torch._dynamo.exc.TorchDynamoException, torch._inductor.exc.InductorError, torch.OutOfMemoryError) as e:
            lines.append(f"      torch.compile: could not run ({type(e).__name__}: {str(e).splitlines()[0][:160]})")
        else:
            breaks, recompiles = sum(counters['graph_break'].values()), sum(counters['recompiles'].values())
            lines.append(f"      torch.compile: {fast * 1000:.1f} ms/step, {seconds / fast:.2f}x the eager step, after {compile_s:.0f} s of "
                         f"compiling; {breaks} graph break(s), {recompiles} recompilation(s)")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default=None, help="cuda or cpu (default: cuda when there is one)")
    parser.add_argument('--sizes', default=None, help=f"comma-separated WALT sizes of {list(WALT_SIZES)} (default: small,base,L on "
                                                      "CUDA, small on the CPU)")
    parser.add_argument('--objectives', default='image,video', help='comma-separated objectives (default: image,video)')
    parser.add_argument('--batch', type=int, default=None, help='clips per process (default: 8 on CUDA, 2 on the CPU)')
    parser.add_argument('--steps', type=int, default=10, help='timed steps per size and objective (the median is reported)')
    parser.add_argument('--compile', action='store_true', help='also time the step under torch.compile')
    parser.add_argument('--out', default=None, help='also write the printout to this file (Markdown)')
    args = parser.parse_args()
    distributed = int(os.environ.get('WORLD_SIZE', '1')) > 1
    cuda = torch.cuda.is_available()
    if args.device not in (None, 'cuda', 'cpu'): sys.exit(f"--device {args.device!r}: valid devices are 'cuda' and 'cpu'")
    if args.device == 'cuda' and not cuda: sys.exit("--device cuda: torch sees no CUDA device here (torch.cuda.is_available() is False)")
    on_cuda = args.device == 'cuda' or (args.device is None and cuda)
    sizes = (args.sizes or ('small,base,L' if on_cuda else 'small')).split(',')
    unknown = [s for s in sizes if s not in WALT_SIZES]
    if unknown: sys.exit(f"--sizes: unknown sizes {unknown}; valid sizes are {list(WALT_SIZES)}")
    objectives = args.objectives.split(',')
    if not set(objectives) <= {'image', 'video'}: sys.exit(f"--objectives {args.objectives!r}: valid objectives are image and video")
    if args.batch is None: args.batch = 8 if on_cuda else 2
    for name in ('batch', 'steps'):
        if getattr(args, name) < 1: sys.exit(f"--{name} must be a positive integer; got {getattr(args, name)}")
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if on_cuda else 'cpu')
    if distributed:
        if on_cuda: torch.cuda.set_device(device)   # before the process group, which binds its NCCL communicator to it
        dist.init_process_group('nccl' if on_cuda else 'gloo', device_id=device if on_cuda else None)
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    nominal, name = nominal_tflops(device)
    reference, what = matmul_tflops(device)
    versions = f"torch {torch.__version__}" + (f", CUDA {torch.version.cuda}" if on_cuda else f", {torch.get_num_threads()} threads")
    lines = [f"# training step on {name} ({device.type}), {versions}, {world} process(es){' (DDP)' if world > 1 else ''}, "
             f"{'bf16 autocast' if on_cuda else 'fp32'}, git {git_sha()}, "
             f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
             f"{what}: {reference:.3f} TFLOP/s measured" + (f"; nominal dense bf16 peak {nominal:.0f} TFLOP/s" if nominal else
                                                           ("; no nominal peak known for this device (NOMINAL_TFLOPS)" if on_cuda else ''))]
    if rank == 0: print('\n'.join(lines), flush=True)
    try:
        for size in sizes:
            for objective in objectives:
                out = bench_size(size, objective, args, device, rank, world, reference, nominal)
                if rank == 0: print('\n'.join(out), flush=True)
                lines += out
    finally:
        if distributed: dist.destroy_process_group()
    if args.out and rank == 0:
        atomic_write_bytes(args.out, ('```\n' + '\n'.join(lines) + '\n```\n').encode())
        print(f"wrote {args.out}")


if __name__ == '__main__':
    main()
