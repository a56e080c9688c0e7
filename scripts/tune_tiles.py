"""Time each fused Re-attention kernel at several tile sizes on a GPU, keep the fastest, profile a training step.

The kernels of `deepvit_nb.fused` take their tiles from `TILES` (one entry per kernel, for 16-bit inputs).
This script times every kernel at DeepViT-16B's attention shape (12 heads, 197 tokens, 32 channels, bf16,
Q/K/V strided as they come from the projection) over a list of tiles, one kernel at a time with the others
as shipped, and prints a table with the fastest per kernel. Tiles that need more shared memory than the
GPU has are reported as such. Then it times the whole attention core (covariance pass, output pass and
both backward passes) with the fastest tiles, next to PyTorch's fused SDPA (FlashAttention) at the same
shape, which is what timm's ViT spends on attention.

    python scripts/tune_tiles.py [--batch 128] [--write tiles.json] [--profile]

`--write` saves the fastest tiles for `python -m deepvit_nb.bench --gpu --tiles tiles.json`; `--profile`
also prints the GPU time per kernel of one training step of `deepvit_16b` (fused kernels, with the fastest
tiles) and of timm's ViT of the same size.
"""
import argparse, json, sys, time

CANDIDATES = [(16, 16, 2), (16, 16, 4), (16, 16, 8), (32, 16, 4), (16, 32, 4), (32, 32, 4), (32, 16, 8), (64, 16, 4)]

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--batch', type=int, default=128)
    p.add_argument('--write', help='save the fastest tiles here (JSON)')
    p.add_argument('--profile', action='store_true', help='also profile one training step (ours and timm-sdpa)')
    args = p.parse_args(argv)

    import torch, torch.nn.functional as F
    from triton.testing import do_bench
    if not torch.cuda.is_available(): p.error('needs a CUDA GPU')
    import deepvit_nb.fused as fused
    B, H, T, D = args.batch, 12, 197, 32
    torch.manual_seed(0)
    qkv = torch.randn(B, T, 3, H, D, device='cuda', dtype=torch.bfloat16).permute(2, 0, 3, 1, 4)  # as from the projection
    q, k, v = (t.detach().requires_grad_() for t in qkv.unbind(0))
    w = (torch.eye(H, device='cuda') + 0.1 * torch.randn(H, H, device='cuda')).requires_grad_()
    c = torch.zeros(H, device='cuda', requires_grad=True)
    g = torch.randn(B, H, T, D, device='cuda', dtype=torch.bfloat16)
    m = torch.randn(H, H, device='cuda') / (B * T * T)
    scale = D ** -0.5
    _, lse = fused.head_covariance(q, k, scale)

    def backward():   # both backward calls of a training step: through the output, and through C
        fused.kernel_backward(q, k, v, g, lse, w, w, c, scale, True, False)
        fused.kernel_backward(q, k, k, q, lse, m, m, m[0], scale, False, True)
    ops = {   # what each kernel's time is measured on: the calls that launch it in training and inference
        'cov_fwd': lambda: fused.head_covariance(q, k, scale),
        'mix_fwd': lambda: fused.mixed_attention(q, k, v, w, c, scale),          # inference: ℓ pass and output pass
        'bwd_dq': backward, 'bwd_dkdv': backward}
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}; attention of B={B}, H={H}, T={T}, d={D}, bf16")
    print("each kernel's call timed over tiles (BM queries, BN keys, warps), the other kernels as shipped; "
          "bwd_dq and bwd_dkdv: both backward calls of a training step")
    shipped = {name: dict(t) for name, t in fused.TILES.items()}
    best = {}
    print('| kernel | ' + ' | '.join(f"{bm}×{bn}, {nw}w" for bm, bn, nw in CANDIDATES) + ' |')
    print('|---|' + '---|' * len(CANDIDATES))
    for name, op in ops.items():
        cells, times = [], {}
        for bm, bn, nw in CANDIDATES:
            fused.TILES[name] = dict(BM=bm, BN=bn, num_warps=nw)
            try:
                times[(bm, bn, nw)] = do_bench(op)
                cells.append(f"{times[(bm, bn, nw)]:.3f} ms")
            except Exception as e:
                cells.append('no shared memory' if 'shared memory' in str(e) else f"fails: {str(e).splitlines()[0][:60]}")
        fused.TILES[name] = dict(shipped[name])
        if times:
            bm, bn, nw = min(times, key=times.get)
            best[name] = dict(BM=bm, BN=bn, num_warps=nw)
            cells[CANDIDATES.index((bm, bn, nw))] = f"**{cells[CANDIDATES.index((bm, bn, nw))]}**"
        print(f"| {name} | " + ' | '.join(cells) + ' |', flush=True)

    def forward():
        cov, lse = fused.HeadCovariance.apply(q, k, scale)
        return fused.MixedAttention.apply(q, k, v, w, c, scale, lse), cov
    def train():
        out, cov = forward()
        torch.autograd.backward([out, cov], [g, torch.ones_like(cov)])
    def sdpa_train(): F.scaled_dot_product_attention(q, k, v).backward(g)
    print('\n| attention core | inference ms | training forward + backward ms |\n|---|---|---|')
    print(f"| PyTorch SDPA (flash) | {do_bench(lambda: F.scaled_dot_product_attention(q, k, v)):.3f} | {do_bench(sdpa_train):.3f} |")
    print(f"| fused, shipped tiles | {do_bench(ops['mix_fwd']):.3f} | {do_bench(train):.3f} |")
    fused.set_tiles(best)
    print(f"| fused, fastest tiles | {do_bench(ops['mix_fwd']):.3f} | {do_bench(train):.3f} |")
    print(f"\nfastest tiles: {json.dumps(best)}")
    if args.write:
        with open(args.write, 'w') as f: json.dump(best, f, indent=1)
    if args.profile: profile(args.batch)
    return 0

def profile(batch):
    "GPU time per kernel of one bf16 training step, for ours (fused kernels, current tiles) and timm-sdpa at deepvit_16b."
    import torch, torch.nn as nn
    from torch.profiler import profile as torch_profile, ProfilerActivity
    from deepvit_nb.bench import build
    for impl in ('ours', 'timm-sdpa'):
        torch.manual_seed(0)
        model = build(impl, 'deepvit_16b').cuda().train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        x, y = torch.randn(batch, 3, 224, 224, device='cuda'), torch.randint(0, 10, (batch,), device='cuda')
        def step():
            with torch.autocast('cuda', dtype=torch.bfloat16): loss = nn.functional.cross_entropy(model(x), y)
            loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
        for _ in range(3): step()
        torch.cuda.synchronize()
        with torch_profile(activities=[ProfilerActivity.CUDA]) as prof:
            step(); torch.cuda.synchronize()
        events = prof.key_averages()
        key = 'self_device_time_total' if hasattr(events[0], 'self_device_time_total') else 'self_cuda_time_total'
        total = sum(getattr(e, key) for e in events) / 1e3
        print(f"\n{impl}: one training step, batch {batch}, GPU kernels {total:.1f} ms in all; the 10 largest:")
        print('| kernel | calls | ms | share |\n|---|---|---|---|')
        for e in sorted(events, key=lambda e: -getattr(e, key))[:10]:
            ms = getattr(e, key) / 1e3
            print(f"| {e.key[:90]} | {e.count} | {ms:.2f} | {ms / total:.1%} |")
        del model, opt

if __name__ == '__main__':
    sys.exit(main())
