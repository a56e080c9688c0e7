"The fused kernels compile for an H100 (sm_90) and fit its shared memory, checked without a GPU."
import subprocess, sys
from pathlib import Path

import pytest

pytest.importorskip('triton', reason='Triton is not installed (pip install "deepvit_nb[gpu]"): no kernels to compile')

SCRIPT = Path(__file__).parents[1] / 'scripts' / 'compile_kernels.py'

def run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=600)

def test_kernels_compile_for_h100():
    res = run('--arch', '90')
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    rows = [l for l in res.stdout.splitlines() if l.startswith('| _')]
    assert len(rows) == 14, res.stdout                        # 7 kernel variants × (bf16, fp32)
    assert 'all kernels compile and fit' in res.stdout

def test_compile_check_can_fail():
    res = run('--arch', '90', '--shared-kb', '40')             # the backward kernels need more than 40 KB
    assert res.returncode == 1, res.stdout
    assert '(too much)' in res.stdout

def test_shared_memory_matches_the_gpu(tmp_path):
    "An H200 refused `_bwd_dkdv` with 32×16 tiles: its launch asked for 272,384 bytes (266 KB) of shared memory."
    tiles = tmp_path / 'tiles.json'
    tiles.write_text('{"bwd_dkdv": {"BM": 32, "BN": 16, "num_warps": 4}}')
    res = run('--arch', '90', '--tiles', str(tiles))
    assert res.returncode == 1, res.stdout
    line = next(l for l in res.stdout.splitlines() if l.startswith('| _bwd_dkdv | HAS_DO=1, HAS_M=0 | bf16'))
    assert '| 266 (too much) |' in line, line
