"The fused kernels compile for an H100 (sm_90) and fit its shared memory, checked without a GPU."
import subprocess, sys
from pathlib import Path

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
