"README.md must be what scripts/build_readme.py makes of nbs/index.ipynb."
import importlib.util, json, shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location('build_readme', ROOT / 'scripts' / 'build_readme.py')
build_readme = importlib.util.module_from_spec(spec)
spec.loader.exec_module(build_readme)


def test_readme_is_fresh():
    assert (ROOT / 'README.md').read_text(encoding='utf-8') == build_readme.render(), \
        'README.md is stale: run python scripts/build_readme.py'


def test_render_follows_the_notebook(tmp_path):
    # The check above could fail: an edit to index.ipynb changes what render() produces.
    nb = json.loads((ROOT / 'nbs' / 'index.ipynb').read_text(encoding='utf-8'))
    nb['cells'].append({'cell_type': 'markdown', 'id': 'extra', 'metadata': {}, 'source': 'A new closing line.'})
    edited = tmp_path / 'index.ipynb'
    edited.write_text(json.dumps(nb), encoding='utf-8')
    text = build_readme.render(edited)
    assert text.rstrip().endswith('A new closing line.')
    assert text != build_readme.render()


def test_quick_start_has_two_commands():
    text = (ROOT / 'README.md').read_text(encoding='utf-8')
    quick = text.split('## Quick start', 1)[1].split('```sh', 1)[1].split('```', 1)[0]
    commands = [l for l in quick.strip().splitlines() if l.strip()]
    assert len(commands) == 2, commands
    assert commands[1].strip() == 'nbdev_test && pytest'
