"Without Triton (CPU wheels of PyTorch, macOS): the package imports, Re-attention runs, chapter 07 skips its kernel cells."
import os, subprocess, sys, textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLOCKER = '''
import sys
sys.modules['triton'] = None     # `import triton` fails and `importlib.util.find_spec` finds nothing, as without it
'''

def run(args, tmp_path, **kw):
    (tmp_path / 'sitecustomize.py').write_text(BLOCKER)
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join([str(tmp_path), str(ROOT)])}
    return subprocess.run(args, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600, **kw)

def test_library_without_triton(tmp_path):
    script = textwrap.dedent('''
        import importlib.util, torch
        try: import triton
        except ImportError: print('no triton')
        assert importlib.util.find_spec('triton') is None
        from deepvit_nb import fused
        from deepvit_nb.attention import triton_installed
        from deepvit_nb.models import create_model
        assert not fused.AVAILABLE and not triton_installed.__wrapped__()
        m = create_model('deepvit_tiny_28', depth=2)
        m(torch.randn(2, 1, 28, 28)).sum().backward()
        try: fused.use_interpreter()
        except RuntimeError as e: print(e)
        print('ok')''')
    res = run([sys.executable, '-c', script], tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.split('\n')[0] == 'no triton', res.stdout
    assert "need Triton: pip install 'deepvit_nb[gpu]'" in res.stdout and res.stdout.strip().endswith('ok'), res.stdout

def test_kernel_chapter_skips_without_triton(tmp_path):
    res = run(['nbdev_test', '--path', 'nbs/07_fused_reattention.ipynb'], tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
