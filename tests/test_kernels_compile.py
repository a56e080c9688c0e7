"The fused kernels compile for an H100 (sm_90), fit its shared memory and use Hopper's wgmma; checked without a GPU."
import subprocess, sys
from pathlib import Path

import pytest

pytest.importorskip('triton', reason='Triton is not installed (pip install "deepvit_nb[gpu]"): no kernels to compile')

SCRIPT = Path(__file__).parents[1] / 'scripts' / 'compile_kernels.py'

def run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=1200)

def rows(out):
    return [[c.strip() for c in l.strip('|').split('|')] for l in out.splitlines() if l.startswith('| _')]

def test_kernels_compile_for_h100():
    import deepvit_nb.fused as fused
    res = run('--arch', '90')
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    table = rows(res.stdout)
    want = sum(len(c) * (2 if name == 'mix_fwd' else 1) for name, c in fused.CONFIGS.items())   # mix_fwd: two flag sets
    assert len(table) == want, res.stdout
    assert 'all kernels compile, each with a configuration that fits' in res.stdout
    assert all(int(r[7]) > 0 for r in table), res.stdout          # every kernel's 64-row products are wgmma on sm_90

def test_compile_check_can_fail():
    res = run('--arch', '90', '--shared-kb', '8', '--only', 'lse_fwd')   # its tiles need 10-20 KB
    assert res.returncode == 1, res.stdout
    assert '(too much)' in res.stdout

def test_a100_gets_no_wgmma():
    "The wgmma column counts what it says: sm_80 has no wgmma, so the same kernel shows only mma.sync."
    res = run('--arch', '80', '--only', 'lse_fwd')
    assert res.returncode == 0, res.stdout + res.stderr[-2000:]
    assert all(int(r[7]) == 0 and int(r[8]) > 0 for r in rows(res.stdout)), res.stdout
