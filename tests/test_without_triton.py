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

CHAPTER_RUN = '''
import json, sys
from pathlib import Path
import nbdev.test as t
seen = {}
run_all = t.CaptureShell.run_all
def keep(self, nb, *args, **kw):          # nbdev_test's own run of the chapter, with its outputs kept
    seen['nb'] = nb
    return run_all(self, nb, *args, **kw)
t.CaptureShell.run_all = keep
ok, _ = t.test_nb(Path('nbs/07_fused_reattention.ipynb').resolve(), skip_flags=['slow', 'gpu'])
cells = []
for c in seen['nb'].cells:
    if c.cell_type != 'code': continue
    text = ''.join(''.join(o.get('text', '')) for o in c.get('outputs', []) if o.get('output_type') == 'stream')
    cells.append(dict(magic=c.source.startswith('%%needs_triton'), ran='execution_count' in c and c.execution_count is not None,
                      skipped='skipped: Triton is not installed' in text, text=text[:300]))
print(json.dumps(dict(ok=ok, cells=cells)))
'''

def chapter_cells(tmp_path, block:bool):
    "Run chapter 07 as nbdev_test does (with Triton blocked or not); what each code cell printed."
    (tmp_path / 'sitecustomize.py').write_text(BLOCKER if block else '')
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join([str(tmp_path), str(ROOT)])}
    res = subprocess.run([sys.executable, '-c', CHAPTER_RUN], capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    import json
    report = json.loads(res.stdout.strip().splitlines()[-1])
    assert report['ok'], res.stderr[-3000:]
    return report['cells']

def test_kernel_chapter_skips_without_triton(tmp_path):
    cells = chapter_cells(tmp_path, block=True)
    magic = [c for c in cells if c['magic']]
    assert len(magic) >= 9 and all(c['skipped'] for c in magic), magic      # every kernel cell said it was skipped
    assert not any(c['skipped'] for c in cells if not c['magic'])            # and nothing else was
    # the cells without kernels still ran: the QKᵀ pass count reads the kernels' source, which needs no Triton
    assert any('→ forward' in c['text'] for c in cells if not c['magic']), [c['text'] for c in cells]
