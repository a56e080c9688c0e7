"The docs preview leaves the user's environment as it was: no Quarto download, no sudo, no `pip install -e`."
import os, shutil, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def environment(cwd):
    "What a preview must not change: the installed packages, and where `import deepvit_nb` comes from."
    freeze = subprocess.run([sys.executable, '-m', 'pip', 'freeze', '--all'], capture_output=True, text=True, check=True).stdout
    origin = subprocess.run([sys.executable, '-c', 'import deepvit_nb; print(deepvit_nb.__file__)'], cwd=cwd,
                            capture_output=True, text=True, check=True).stdout.strip()
    return freeze, origin


def test_preview_changes_nothing_outside_the_checkout(tmp_path):
    shims = tmp_path / 'bin'; shims.mkdir()
    for tool in ('sudo', 'curl', 'wget', 'dpkg', 'apt-get'):      # what nbdev's Quarto install would call
        (shims / tool).write_text(f'#!/bin/sh\necho {tool} "$@" >> {tmp_path}/called\nexit 1\n')
        (shims / tool).chmod(0o755)
    path = os.pathsep.join([str(shims)] + [p for p in os.environ['PATH'].split(os.pathsep)
                                           if not (Path(p) / 'quarto').exists()])      # no Quarto, as on most machines
    before = environment(tmp_path)
    res = subprocess.run([sys.executable, str(ROOT / 'scripts' / 'preview_docs.py'), '--out', str(tmp_path / 'site')],
                         cwd=ROOT, capture_output=True, text=True, timeout=900, env={**os.environ, 'PATH': path})
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    assert not (tmp_path / 'called').exists(), (tmp_path / 'called').read_text()
    assert 'Quarto is not installed' not in res.stdout + res.stderr
    assert environment(tmp_path) == before
    assert (tmp_path / 'site' / 'attention.html').is_file() and (tmp_path / 'site' / 'contract.html').is_file()
