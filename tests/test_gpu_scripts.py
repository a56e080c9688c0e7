"The GPU-only scripts parse their arguments and refuse clearly on a machine without CUDA (CI has none)."
import subprocess, sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the message given without a GPU')
@pytest.mark.parametrize('script', ['profile_step.py', 'gpu_train_check.py'])
def test_refuses_without_cuda(script):
    res = subprocess.run([sys.executable, str(ROOT / 'scripts' / script)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 2, res.stdout + res.stderr
    assert 'needs a CUDA GPU' in res.stderr

@pytest.mark.parametrize('script', ['profile_step.py', 'gpu_train_check.py'])
def test_help(script):
    res = subprocess.run([sys.executable, str(ROOT / 'scripts' / script), '--help'], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and 'usage' in res.stdout, res.stderr
