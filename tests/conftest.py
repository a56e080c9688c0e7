import os, sys, subprocess
from pathlib import Path

import pytest
import torch

from deepvit_nb.data import fashion_mnist, write_imagefolder

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='session')
def image_folder(tmp_path_factory):
    "A small ImageFolder of real images (Fashion-MNIST's, fetched if need be): 3 classes."
    root = tmp_path_factory.mktemp('imagefolder')
    try: ds = fashion_mnist('test')
    except FileNotFoundError: ds = None
    if ds is not None:
        picks = {c: (ds.labels == c).nonzero().flatten().tolist() for c in range(3)}
        train = [(ds.images[i], c) for c in range(3) for i in picks[c][:22]]     # 66 images
        val = [(ds.images[i], c) for c in range(3) for i in picks[c][22:29]]      # 21: not a multiple of 2 or 8
    else:
        g = torch.Generator().manual_seed(0)
        make = lambda n: [(torch.randint(0, 256, (1, 28, 28), generator=g, dtype=torch.uint8), i % 3) for i in range(n)]
        train, val = make(66), make(21)
    write_imagefolder(train, root / 'train', classes=['a', 'b', 'c'])
    write_imagefolder(val, root / 'val', classes=['a', 'b', 'c'])
    return root


def run_cli(args, cwd, launcher=(), timeout=600, crash_at=None, **kw):
    "Run deepvit_train as a user would (python -m), returning the CompletedProcess; `crash_at` a step to crash after."
    cmd = [*launcher] if launcher else [sys.executable]
    cmd += ['-m', 'deepvit_nb.train', *args]
    env = {**os.environ, 'PYTHONUNBUFFERED': '1', 'OMP_NUM_THREADS': '1'}
    env.pop('DEEPVIT_CRASH_AT_STEP', None)
    if crash_at is not None: env['DEEPVIT_CRASH_AT_STEP'] = str(crash_at)
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env, **kw)
