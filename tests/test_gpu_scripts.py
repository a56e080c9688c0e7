"The GPU-only scripts parse their arguments and refuse clearly on a machine without CUDA (CI has none)."
import subprocess, sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the message given without a GPU')
@pytest.mark.parametrize('script', ['profile_step.py', 'gpu_train_check.py', 'gpu_session.py'])
def test_refuses_without_cuda(script):
    res = subprocess.run([sys.executable, str(ROOT / 'scripts' / script)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 2, res.stdout + res.stderr
    assert 'needs a CUDA GPU' in res.stderr

@pytest.mark.parametrize('script', ['profile_step.py', 'gpu_train_check.py', 'gpu_session.py'])
def test_help(script):
    res = subprocess.run([sys.executable, str(ROOT / 'scripts' / script), '--help'], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and 'usage' in res.stdout, res.stderr


def _session():
    import importlib.util
    spec = importlib.util.spec_from_file_location('gpu_session', ROOT / 'scripts' / 'gpu_session.py')
    module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)
    return module


def test_the_gpu_session_lists_its_steps():
    res = subprocess.run([sys.executable, str(ROOT / 'scripts' / 'gpu_session.py'), '--dry-run'], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert [l.split(' ')[0] for l in res.stdout.splitlines()] == ['compile', 'check_and_table', 'profile_224', 'profile_384']
    for script in ('compile_kernels.py', 'profile_step.py'): assert (ROOT / 'scripts' / script).is_file()


def test_the_gpu_session_keeps_to_its_budget(tmp_path):
    "A step that overruns is stopped with its output kept; the next step gets what is left, or is not started and says why."
    session = _session()
    say = lambda text, then='': [sys.executable, '-c', f"import time; print({text!r}, flush=True); {then}"]
    plan = [('quick', say('first'), 1), ('slow', say('partial', 'time.sleep(60)'), 1), ('late', say('never'), 30)]
    start = session.time.monotonic()
    rows = session.run_steps(plan, tmp_path / 'out', budget=8)
    assert session.time.monotonic() - start < 20
    assert [r['status'] for r in rows][0] == 0 and str(rows[1]['status']).startswith('stopped after')
    assert rows[2]['status'] == 'not started'
    assert 'first' in (tmp_path / 'out' / 'quick.txt').read_text()
    assert 'partial' in (tmp_path / 'out' / 'slow.txt').read_text()             # what it wrote before the stop is kept
    assert 'not started' in (tmp_path / 'out' / 'late.txt').read_text()
    assert '| slow | stopped after' in session.summary(rows, 'test device', 8)
