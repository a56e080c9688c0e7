"""Build the documentation site offline, to look at it and to test it in a browser: `python scripts/preview_docs.py` -> `_site/`.

GitHub deploys the site with Quarto (`nbdev_docs` in .github/workflows/deploy.yaml). Quarto cannot be installed
everywhere, so this preview runs the steps of nbdev's `nbdev_proc_nbs` that write `_proc/` (the quarto and sidebar
files, the doc links, the processed notebooks) and renders that with smalldocs, a pure-Python renderer of
`_quarto.yml` projects. It calls those steps one by one rather than `nbdev_proc_nbs` itself: without Quarto on
PATH, nbdev 2.4's `nbdev_proc_nbs` downloads Quarto, installs it with `sudo dpkg` and then runs
`pip install -e` on the checkout, changing the environment this script runs in. The preview changes nothing
outside the checkout's build folders (`_proc/`, `.cache/`, `_site/`). Two adjustments make it match the
deployed site:
- pages are named from each notebook's `output-file`, as nbdev names them (`attention.html`, not
  `01_attention.html`), so the links nbdev writes and the README's links resolve;
- KaTeX is served from the site itself (the npm package `katex`, installed on first use into `.cache/katex`)
  instead of a CDN, so maths typesets without internet.

Then `python scripts/preview_docs.py --serve` serves `_site/` on http://127.0.0.1:8000.
"""
import argparse, functools, http.server, json, re, shutil, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KATEX_VERSION = '0.16.11'          # the version smalldocs links to


def output_name(nb:Path) -> str | None:
    "The page name nbdev gives a processed notebook: its front matter's `output-file` (None if it has none)."
    cells = json.loads(nb.read_text(encoding='utf-8'))['cells']
    if cells and cells[0]['cell_type'] == 'raw':
        m = re.search(r'^output-file:\s*(\S+)\.html\s*$', ''.join(cells[0]['source']), re.M)
        if m: return m.group(1)
    return None


def stage(proc:Path, dest:Path) -> dict:
    "Copy nbdev's `_proc` to `dest` with every notebook renamed to its page name; returns {old: new} file names."
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(proc, dest)
    renames = {}
    for nb in sorted(dest.glob('*.ipynb')):
        name = output_name(nb)
        if name and f'{name}.ipynb' != nb.name:
            renames[nb.name] = f'{name}.ipynb'
            nb.rename(nb.with_name(f'{name}.ipynb'))
    sidebar = dest / 'sidebar.yml'
    text = sidebar.read_text(encoding='utf-8')
    for old, new in renames.items(): text = re.sub(rf'(?m)^(\s*- ){re.escape(old)}$', rf'\g<1>{new}', text)
    sidebar.write_text(text, encoding='utf-8')
    nbdev_yml = dest / 'nbdev.yml'      # Quarto writes nbdev's _docs; the preview is a build of its own
    if nbdev_yml.exists(): nbdev_yml.write_text(re.sub(r'output-dir:.*', 'output-dir: _site', nbdev_yml.read_text()))
    return renames


def katex_dist() -> Path:
    "KaTeX's `dist` folder from the npm package, installed into `.cache/katex` the first time."
    prefix = ROOT / '.cache' / 'katex'
    dist = prefix / 'node_modules' / 'katex' / 'dist'
    if not (dist / 'katex.min.js').is_file():
        if not shutil.which('npm'): sys.exit("preview_docs: needs npm to install KaTeX (the npm package `katex`)")
        subprocess.run(['npm', 'install', '--silent', '--no-audit', '--no-fund', '--prefix', str(prefix),
                        f'katex@{KATEX_VERSION}'], check=True)
    return dist


PROC_STEPS = """
from nbdev.config import get_config
from nbdev.quarto import refresh_quarto_yml, nbdev_sidebar
from nbdev.serve import proc_nbs
import nbdev.doclinks
path = get_config().nbs_path
refresh_quarto_yml()                       # nbdev_proc_nbs's steps after its Quarto install (_ensure_quarto), which is skipped
nbdev.doclinks._build_modidx()
nbdev_sidebar.__wrapped__(path=path)
proc_nbs(path)
"""

def process_notebooks():
    "What `nbdev_proc_nbs` writes (`_proc/`), without its attempt to install Quarto and the checkout."
    subprocess.run([sys.executable, '-c', PROC_STEPS], cwd=ROOT, check=True)

def build(out:Path=ROOT / '_site', proc:bool=True) -> Path:
    "Process the notebooks, stage them, render with smalldocs into `out` with a local KaTeX; returns `out`."
    if proc: process_notebooks()
    staged = ROOT / '.cache' / 'site_src'
    stage(ROOT / '_proc', staged)
    import smalldocs.layout
    from smalldocs.site import build as render
    smalldocs.layout.KATEX = 'katex'     # every page sits at the top of the site, so a relative path serves all
    site = render(str(staged), quiet=True)
    for w in site.warnings: print(f"smalldocs: {w}", file=sys.stderr)
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(site.out, out)
    shutil.copytree(katex_dist(), out / 'katex')
    return out


def serve(folder:Path, port:int):
    "Serve `folder` on 127.0.0.1."
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    with http.server.ThreadingHTTPServer(('127.0.0.1', port), handler) as httpd:
        print(f"serving {folder} on http://127.0.0.1:{port}/ (Ctrl-C stops)")
        httpd.serve_forever()


def main(argv=None):
    p = argparse.ArgumentParser(prog='python scripts/preview_docs.py', description=__doc__.split('\n')[0])
    p.add_argument('--out', default=str(ROOT / '_site'), help='the site folder (default _site/)')
    p.add_argument('--no-proc', action='store_true', help='reuse _proc/ instead of processing the notebooks again')
    p.add_argument('--serve', action='store_true', help='then serve it on 127.0.0.1')
    p.add_argument('--port', type=int, default=8000)
    args = p.parse_args(argv)
    out = build(Path(args.out), proc=not args.no_proc)
    pages = sorted(p.name for p in out.glob('*.html'))
    print(f"wrote {out}: {len(pages)} pages ({', '.join(pages)})")
    if args.serve: serve(out, args.port)
    return 0


if __name__ == '__main__':
    sys.exit(main())
