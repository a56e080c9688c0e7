"""What a reader sees, in a real browser: the documentation site (offline preview) and a chapter run in JupyterLab.

Playwright drives Debian's Chromium (never `playwright install`); every server is started here on 127.0.0.1.
Screenshots of the index, attention and collapse pages are written to `_site/_shots/` (build output)."""""
import functools, http.server, importlib, json, os, re, shutil, socket, subprocess, sys, threading, time
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
playwright = pytest.importorskip('playwright.sync_api', reason='playwright is not installed (pip install -e ".[dev]")')
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")
ARGS = ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage']
SITE_URL = 'https://deepvit-nb.github.io/deepvit_nb/'      # the deployed site, which README.md links to
MAX_HEIGHT = 60_000                                         # px: a page taller than this holds a log flood


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


@pytest.fixture(scope='module')
def site():
    "The offline preview of the site, built as `python scripts/preview_docs.py` does, served on 127.0.0.1."
    res = subprocess.run([sys.executable, str(ROOT / 'scripts' / 'preview_docs.py')], cwd=ROOT, capture_output=True,
                         text=True, timeout=900)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    folder = ROOT / '_site'
    port = free_port()
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args): pass
    handler = functools.partial(Quiet, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', port), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield folder, f'http://127.0.0.1:{port}/'
    httpd.shutdown()


@pytest.fixture(scope='module')
def browser():
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def ids_of(html:str): return set(re.findall(r'\sid="([^"]+)"', html))


def test_every_page(site, browser):
    folder, base = site
    pages = sorted(p.name for p in folder.glob('*.html'))
    assert {'index.html', 'attention.html', 'cores.html', 'models.html', 'collapse.html', 'train.html'} <= set(pages), pages
    ids = {name: ids_of((folder / name).read_text(encoding='utf-8')) for name in pages}
    page = browser.new_page()
    problems, headings = [], {}
    for name in pages:
        page.goto(base + name, wait_until='load')
        page.wait_for_timeout(200)                                   # KaTeX's auto-render runs on load
        text = page.inner_text('main') if page.query_selector('main') else page.inner_text('body')
        if re.search(r'\\\(|\\\[|\$\$', text): problems.append(f"{name}: raw maths in the text")
        if '#|' in text: problems.append(f"{name}: a '#|' directive is visible")
        if 'Traceback (most recent call last)' in text: problems.append(f"{name}: an error output")
        if re.search(r'\w+Warning\b', text) and re.search(r'(site-packages|/root/|/home/)', text):
            problems.append(f"{name}: a warning with a machine's path in it")
        if name in ('attention.html', 'cores.html', 'theory.html') and not page.query_selector('.katex'):
            problems.append(f"{name}: no typeset maths")
        broken = page.evaluate("[...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")
        problems += [f"{name}: image does not load: {src}" for src in broken]
        height = page.evaluate('document.body.scrollHeight')
        if height > MAX_HEIGHT: problems.append(f"{name}: {height} px tall")
        for href in page.evaluate("[...document.querySelectorAll('main a[href]')].map(a => a.getAttribute('href'))"):
            problems += check_link(name, href, ids, folder)
        for h in page.evaluate("[...document.querySelectorAll('h2, h3, h4')].map(h => h.innerText.trim())"):
            headings.setdefault(h, []).append(name)
        if name in ('index.html', 'attention.html', 'collapse.html'):
            (folder / '_shots').mkdir(exist_ok=True)
            page.screenshot(path=str(folder / '_shots' / name.replace('.html', '.png')), full_page=False)
    readme = (ROOT / 'README.md').read_text(encoding='utf-8')
    for href in re.findall(r'\]\((' + re.escape(SITE_URL) + r'[^)]*)\)', readme):
        problems += check_link('README.md', href[len(SITE_URL):], ids, folder)
    problems += [f"{name} is documented {len(where)} times: {where}" for name, where in documented(headings).items()
                 if len(where) != 1]
    assert not problems, '\n'.join(problems)


def check_link(page:str, href:str, ids:dict, folder:Path):
    "Problems with one link of `page`: a page or file of the site that does not exist, or an anchor a page does not hold."
    if not href or urlparse(href).scheme or href.startswith(('mailto:', '//')): return []
    target, anchor = urldefrag(href)
    target = unquote(target).lstrip('./') or page
    if target.endswith('.html') and target not in ids: return [f"{page}: link to a missing page: {href}"]
    if target.endswith('.html') and anchor and anchor not in ids[target]: return [f"{page}: link to a missing anchor: {href}"]
    if not target.endswith('.html') and not (folder / target).exists(): return [f"{page}: link to a missing file: {href}"]
    return []


PAGES = {'attention': 'attention.html', 'cores': 'cores.html', 'models': 'models.html', 'collapse': 'collapse.html',
         'data': 'data.html', 'train': 'train.html', 'bench': 'performance.html', 'study': 'study.html',
         'fused': 'fused_reattention.html'}

def documented(headings:dict):
    "For each public function and class of each module: the headings that document it on its chapter's page."
    found = {}
    for mod, page in PAGES.items():
        m = importlib.import_module(f'deepvit_nb.{mod}')
        for name in m.__all__:
            obj = getattr(m, name)
            if callable(obj) and getattr(obj, '__module__', '') == m.__name__:
                found[f'{mod}.{name}'] = [p for p in headings.get(name, []) if p == page]
    return found


@pytest.fixture
def lab(tmp_path):
    "JupyterLab on 127.0.0.1 over a copy of nbs/ (so that autosave never touches the repository)."
    shutil.copytree(ROOT / 'nbs', tmp_path / 'nbs')
    shutil.copytree(ROOT / 'tests' / 'data', tmp_path / 'tests' / 'data')
    shutil.copy(ROOT / 'settings.ini', tmp_path)      # a project, as a reader's checkout is: the last cell exports
    port, token = free_port(), 'deepvit-test'
    log = open(tmp_path / 'lab.log', 'w')
    settings = tmp_path / 'lab_settings' / '@jupyterlab' / 'notebook-extension'
    settings.mkdir(parents=True)                              # every cell in the page, not only those in view
    (settings / 'tracker.jupyterlab-settings').write_text(json.dumps({'windowingMode': 'none'}))
    proc = subprocess.Popen([sys.executable, '-m', 'jupyterlab', '--no-browser', '--allow-root', '--ip=127.0.0.1',
                             f'--port={port}', f'--IdentityProvider.token={token}', f'--ServerApp.root_dir={tmp_path / "nbs"}',
                             f'--LabApp.user_settings_dir={tmp_path / "lab_settings"}', '--LabApp.expose_app_in_browser=True',
                             '--LabApp.news_url=', '--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate'],
                            stdout=log, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, 'JUPYTER_CONFIG_DIR': str(tmp_path / 'jupyter_config')})
    deadline = time.time() + 120
    while time.time() < deadline:
        assert proc.poll() is None, (tmp_path / 'lab.log').read_text()[-3000:]
        try:
            with socket.create_connection(('127.0.0.1', port), timeout=1): break
        except OSError: time.sleep(0.5)
    yield f'http://127.0.0.1:{port}', token
    proc.terminate()
    try: proc.wait(timeout=20)
    except subprocess.TimeoutExpired: proc.kill()


NOTEBOOK = "window.jupyterapp && window.jupyterapp.shell.currentWidget"     # the notebook panel in front
STATE = f"""() => {{
    const panel = {NOTEBOOK};
    if (!panel || !panel.content || !panel.sessionContext.session || !panel.sessionContext.session.kernel) return null;
    const cells = panel.content.widgets.filter(c => c.model.type === 'code').map(c => c.model);
    const errors = cells.flatMap(m => m.outputs.toJSON().filter(o => o.output_type === 'error').map(o => o.ename + ': ' + o.evalue));
    return {{kernel: panel.sessionContext.session.kernel.status, cells: cells.length,
             ran: cells.filter(m => m.executionCount !== null).length, errors}};
}}"""


def test_attention_chapter_runs_all_in_jupyterlab(lab, browser):
    url, token = lab
    page = browser.new_page(viewport={'width': 1400, 'height': 900})
    page.goto(f'{url}/lab/tree/01_attention.ipynb?token={token}&reset', wait_until='load')
    page.wait_for_function(f"() => {{ const s = ({STATE})(); return s && s.kernel === 'idle' && s.cells > 0; }}",
                           timeout=180_000, polling=500)
    before = page.evaluate(f"({STATE})()")
    assert before['ran'] == 0, before                                    # a fresh notebook: nothing has run
    page.locator('.lm-MenuBar-itemLabel', has_text='Run').first.click()          # the Run menu ...
    page.locator('.lm-Menu-itemLabel', has_text='Run All Cells').first.click()   # ... and its Run All
    start = time.time()
    page.wait_for_function(f"() => {{ const s = ({STATE})(); return s && s.kernel === 'idle' && "
                           f"(s.ran === s.cells || s.errors.length > 0); }}", timeout=300_000, polling=500)
    seconds = time.time() - start
    state = page.evaluate(f"({STATE})()")
    (ROOT / '_site' / '_shots').mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ROOT / '_site' / '_shots' / 'jupyterlab_01_attention.png'))
    assert not state['errors'], state['errors']
    assert state['ran'] == state['cells'], state
    print(f"01_attention: Run All in JupyterLab, {state['cells']} code cells, no error, {seconds:.0f} s")


def test_collapse_report_opens_offline(browser, image_folder, tmp_path):
    "deepvit_collapse's report.html, opened as a file with every network request refused: every figure loads, no console error."
    res = subprocess.run([sys.executable, '-m', 'deepvit_nb.collapse', '--model', 'vit_tiny_28', '--data', str(image_folder),
                          '--images', '12', '--batch-size', '6', '--out', str(tmp_path / 'out')], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    context = browser.new_context()
    requests, errors = [], []
    context.route('**/*', lambda route: route.continue_() if route.request.url.startswith('file:')
                  else (requests.append(route.request.url), route.abort()))
    page = context.new_page()
    page.on('console', lambda m: errors.append(m.text) if m.type == 'error' else None)
    page.on('pageerror', lambda e: errors.append(str(e)))
    page.goto((tmp_path / 'out' / 'report.html').as_uri(), wait_until='load')
    images = page.evaluate("[...document.images].map(i => [i.alt, i.complete && i.naturalWidth > 0])")
    assert [a for a, _ in images] == ['collapse', 'similarity_matrix', 'measures'] and all(ok for _, ok in images), images
    readings = page.evaluate("[...document.querySelectorAll('li')].map(li => li.innerText)")
    assert any('similar (Eq. 2 > 0.8)' in r for r in readings) and any('Attention entropy' in r for r in readings), readings
    assert not requests and not errors, (requests, errors)
    page.screenshot(path=str(tmp_path / 'out' / 'report.png'), full_page=True)
    context.close()
