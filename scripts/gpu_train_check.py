"""A short bf16 training run of an ImageNet recipe on a synthetic 224 px ImageFolder, on a GPU.

It writes random JPEG images (10 classes) to a temporary ImageFolder, then trains with the recipe in
`configs/imagenet/<model>.yaml` (RandAugment, MixUp/CutMix, EMA, bf16 through Accelerate) for a few short
epochs through `deepvit_nb.train.train`, the same code path as `deepvit_train`. It prints the images/s of
each epoch (data loading included; the first epoch also compiles the kernels) and the GPU's peak memory.

    python scripts/gpu_train_check.py [--model deepvit_s] [--images 2048] [--batch 128] [--epochs 3]
"""
import argparse, csv, json, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--model', default='deepvit_s', help='a recipe in configs/imagenet/')
    p.add_argument('--images', type=int, default=2048, help='training images (validation: 200)')
    p.add_argument('--batch', type=int, default=128)
    p.add_argument('--epochs', type=int, default=3)
    p.add_argument('--workers', type=int, default=12)
    args = p.parse_args(argv)

    import torch
    from deepvit_nb.data import write_imagefolder
    from deepvit_nb.train import load_config, train
    if not torch.cuda.is_available(): p.error('needs a CUDA GPU')
    tmp = Path(tempfile.mkdtemp(prefix='gpu_train_check_'))
    g = torch.Generator().manual_seed(0)
    images = lambda n: ((torch.randint(0, 256, (3, 224, 224), generator=g, dtype=torch.uint8), i % 10) for i in range(n))
    start = time.time()
    write_imagefolder(images(args.images), tmp / 'data' / 'train', fmt='jpg')
    write_imagefolder(images(200), tmp / 'data' / 'val', fmt='jpg')
    print(f"wrote {args.images} + 200 images in {time.time() - start:.0f}s")
    cfg = load_config(ROOT / 'configs' / 'imagenet' / f'{args.model}.yaml',
                      [f'data_dir={tmp / "data"}', f'epochs={args.epochs}', 'warmup_epochs=1', 'cooldown_epochs=0',
                       f'batch_size={args.batch}', f'num_workers={args.workers}', 'checkpoint_every=0',
                       f'output_dir={tmp / "runs"}', 'bn_recalibration_batches=2'])
    torch.cuda.reset_peak_memory_stats()
    summary = train(cfg)
    peak = torch.cuda.max_memory_allocated() / 2**30
    with open(Path(summary['run_dir']) / 'metrics.csv') as f: rows = list(csv.DictReader(f))
    print(f"\n{args.model}, {torch.cuda.get_device_name()}, bf16, batch {args.batch}, {args.images} images per epoch, "
          f"{args.workers} loader workers")
    print('| epoch | train images/s (data loading included) | train loss |\n|---|---|---|')
    for r in rows: print(f"| {r['epoch']} | {float(r['train_images_per_s']):.0f} | {float(r['train_loss']):.3f} |")
    print(f"peak GPU memory {peak:.2f} GiB; final top-1 on random labels {summary['final'].get('top1', float('nan')):.1f}%")
    return 0

if __name__ == '__main__':
    sys.exit(main())
