"""Benchmark: our denoiser's training step against a peer video diffusion transformer, diffusers'
`LatteTransformer3DModel` (spatial and temporal attention blocks alternating), at equal width, depth,
heads and token count, on the same loss, data and optimiser; then a shared check that both learn.

Run:  .venv/bin/python tests/benchmarks/bench_peers.py [--preset paper] [--steps 10] [--learn 100]
Needs diffusers (`pip install -e '.[bench]'`). Both models are called as v(x_t, t, self_cond): Latte
gets the self-conditioning input as extra channels (as WALT does) and one learned null caption token
for its cross-attention, so both train with `diffusion.diffusion_loss` (v-prediction, self-conditioning
p = 0.9). Printed: parameters, ms per step (median; the models' steps alternate), tokens per second and the ratio ours / theirs;
a third model is Latte with its nn.Linear layers computed as ours are (`walt_paper.model.Linear`: large fp32 CPU
products through oneDNN instead of MKL's sgemm), so the ratio can be read with and without that difference;
then the loss of both over `--learn` steps on the preset's real latents (mean of the first and last
tenth of the steps). Run it on an otherwise idle machine.
"""
import argparse, os, platform, statistics, time

import torch
from torch import nn

from walt_paper.data import PRESETS
from walt_paper.diffusion import diffusion_loss
from walt_paper.model import WALT_SIZES, Linear, build_walt, count_parameters
from walt_paper.pipeline import LATENT_FRAMES, STUDY


class LatteDenoiser(nn.Module):
    "diffusers' Latte as a v-prediction denoiser v(x_t, t, self_cond) with WALT's width, depth (blocks) and heads."
    def __init__(self, size: str, side: int, channels: int = 8, frames: int = LATENT_FRAMES):
        super().__init__()
        from diffusers import LatteTransformer3DModel
        s = WALT_SIZES[size]
        if s['depth'] % 2: raise SystemExit(f"size {size!r} has an odd depth {s['depth']}; Latte's blocks come in spatial/temporal pairs")
        self.latte = LatteTransformer3DModel(
            num_attention_heads=s['heads'], attention_head_dim=s['width'] // s['heads'], in_channels=2 * channels,
            out_channels=channels, num_layers=s['depth'] // 2, patch_size=1, sample_size=side, video_length=frames,
            caption_channels=s['width'], cross_attention_dim=s['width'], norm_type='ada_norm_single',
            activation_fn='gelu-approximate')
        self.null_caption = nn.Parameter(torch.zeros(1, 1, s['width']))

    def forward(self, x, t, self_cond):
        caption = self.null_caption.expand(len(x), -1, -1)
        return self.latte(torch.cat([x, self_cond], 1), timestep=t * 1000, encoder_hidden_states=caption, return_dict=False)[0]


def with_our_linears(model: nn.Module) -> nn.Module:
    "The model with every nn.Linear computed by walt_paper.model.Linear (same parameters, only the GEMM route changes)."
    for m in model.modules():
        if type(m) is nn.Linear: m.__class__ = Linear
    return model


def time_steps(models: dict, batches, steps):
    """Median seconds of a full training step (loss, backward, AdamW) of each model over `steps` steps after one
    warm-up, the models taking turns step by step: a machine that slows down for a while slows both alike."""
    opts = {name: torch.optim.AdamW(model.parameters(), lr=1e-4) for name, model in models.items()}
    gens = {name: torch.Generator().manual_seed(0) for name in models}
    times = {name: [] for name in models}
    for s in range(steps + 1):
        for name, model in models.items():
            start = time.perf_counter()
            diffusion_loss(model, batches[s % len(batches)], gens[name]).backward(); opts[name].step(); opts[name].zero_grad(set_to_none=True)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t[1:]) for name, t in times.items()}


def learn(model, clips, steps, batch, lr):
    "Loss per step of `steps` AdamW steps on real latent clips (the same batches and draws for every model)."
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    g, order = torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)
    losses = []
    for _ in range(steps):
        x0 = clips[torch.randint(0, len(clips), (batch,), generator=order)]
        loss = diffusion_loss(model, x0, g); loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
    return losses


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--preset', choices=sorted(PRESETS), default='paper')
    parser.add_argument('--steps', type=int, default=10, help='timed steps per model (the models take turns)')
    parser.add_argument('--learn', type=int, default=100, help='steps of the shared learning check (0: skip)')
    args = parser.parse_args()
    study, side = STUDY[args.preset], PRESETS[args.preset]['size'] // 8
    size, batch = study['walt_size'], study['walt_batch']
    print(f"# peer comparison, preset {args.preset}: {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {platform.machine()}")
    torch.manual_seed(0)
    models = {'WALT (ours, video)': build_walt(size, 'video'), 'Latte (diffusers)': LatteDenoiser(size, side)}
    torch.manual_seed(0)
    models['Latte, our linears'] = with_our_linears(LatteDenoiser(size, side))
    batches = [torch.randn(batch, 8, LATENT_FRAMES, side, side) for _ in range(2)]
    tokens = batch * LATENT_FRAMES * side * side
    seconds = time_steps(models, batches, args.steps)
    for name, model in models.items():
        print(f"{name:20s} {count_parameters(model) / 1e6:.2f}M params, size {size} (width {WALT_SIZES[size]['width']}, "
              f"{WALT_SIZES[size]['depth']} blocks, {WALT_SIZES[size]['heads']} heads), batch {batch} x {LATENT_FRAMES} x "
              f"{side} x {side} = {tokens} tokens: {seconds[name] * 1000:.0f} ms/step, {tokens / seconds[name]:.0f} tokens/s")
    ours, theirs, theirs_onednn = seconds.values()
    print(f"tokens/s ours / theirs: {theirs / ours:.2f}x (target 1.3x); against Latte with its linear layers through "
          f"oneDNN as ours: {theirs_onednn / ours:.2f}x")
    if args.learn:
        from walt_paper.pipeline import latents
        clips = latents('train', args.preset)['clips']
        for name, model in list(models.items())[:2]:
            torch.manual_seed(0)
            fresh = build_walt(size, 'video') if name.startswith('WALT') else LatteDenoiser(size, side)
            losses = learn(fresh, clips, args.learn, batch, study['walt_lr'])
            k = max(1, args.learn // 10)
            print(f"learns: {name:20s} loss {statistics.mean(losses[:k]):.3f} (first {k} steps) -> "
                  f"{statistics.mean(losses[-k:]):.3f} (last {k}) on the {args.preset} preset's latents, lr {study['walt_lr']}")


if __name__ == '__main__':
    main()
