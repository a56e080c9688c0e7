"""Profile one bf16 training step of deepvit_16b on a GPU: GPU time per kernel, ours (the Triton kernels) against timm's ViT.

This is where the time of a step goes, kernel by kernel. `python -m deepvit_nb.bench --gpu` gives the
throughput table and the per-block attention-core times; this script says which kernels make up the gap.

    python scripts/profile_step.py [--batch 128] [--img 224] [--top 12]
"""
import argparse, sys

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--batch', type=int, default=128)
    p.add_argument('--img', type=int, default=224, help='image size: 224 (197 tokens) or 384 (577 tokens)')
    p.add_argument('--top', type=int, default=12, help='kernels listed per implementation')
    args = p.parse_args(argv)
    import torch
    if not torch.cuda.is_available(): p.error('needs a CUDA GPU')
    import torch.nn as nn
    from torch.profiler import profile, ProfilerActivity
    from deepvit_nb.bench import build
    size = 'deepvit_16b' if args.img == 224 else 'deepvit_16b_384'
    for impl in ('ours', 'timm-sdpa'):
        torch.manual_seed(0)
        model = build(impl, size).cuda().train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        x = torch.randn(args.batch, 3, args.img, args.img, device='cuda')
        y = torch.randint(0, 10, (args.batch,), device='cuda')
        def step():
            with torch.autocast('cuda', dtype=torch.bfloat16): loss = nn.functional.cross_entropy(model(x), y)
            loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
        for _ in range(3): step()                  # the autotuner's trials and the warm-up stay out of the profile
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            step(); torch.cuda.synchronize()
        events = prof.key_averages()
        key = 'self_device_time_total' if hasattr(events[0], 'self_device_time_total') else 'self_cuda_time_total'
        total = sum(getattr(e, key) for e in events) / 1e3
        print(f"\n{impl}: one training step at {args.img} px, batch {args.batch}: GPU kernels {total:.1f} ms in all; the largest:")
        print('| kernel | calls | ms | share |\n|---|---|---|---|')
        for e in sorted(events, key=lambda e: -getattr(e, key))[:args.top]:
            ms = getattr(e, key) / 1e3
            print(f"| {e.key[:90]} | {e.count} | {ms:.2f} | {ms / total:.1%} |")
        del model, opt
    return 0

if __name__ == '__main__':
    sys.exit(main())
