"""Run timm's own model tests (`tests/test_models.py`) against our registered DeepViT configurations.

timm's test file is not in its wheel, so this takes it from timm's source distribution on PyPI, of the
version installed here (or from `--tests PATH`, a test_models.py of a timm checkout). Nothing of it is
kept in this repository. Two edits are made to the copy, the ones timm makes for its own models of the
same kind, each found by its anchor or refused:

* `deepvit_*` joins `NON_STD_FILTERS`: like timm's ViTs (`vit_*`, `deit*`, `cait_*`, ...), our models hand
  back tokens (B, 1+N, C), not an NCHW map; the non-standard config test checks them instead.
* `deepvit_*` joins `EXCLUDE_JIT_FILTERS`: like timm's non-scriptable models, DeepViT is not compiled by
  `torch.jit.script` (chapter 02 says why; `torch.export`, `torch.compile`, `torch.jit.trace` work).

    python scripts/timm_suite.py                 # prints pytest's summary; the exit status is pytest's
    python scripts/timm_suite.py --tests ~/src/pytorch-image-models/tests/test_models.py -x
"""
from __future__ import annotations
import argparse, re, subprocess, sys, tarfile, tempfile
from pathlib import Path

EDITS = {   # list in test_models.py -> the pattern that joins it
    'NON_STD_FILTERS': 'deepvit_*',
    'EXCLUDE_JIT_FILTERS': 'deepvit_*',
}


def sdist_tests(version: str, folder: Path) -> Path:
    "timm's test_models.py from the source distribution of `version` on PyPI."
    cmd = [sys.executable, '-m', 'pip', 'download', '--quiet', '--no-deps', '--no-binary', ':all:',
           f'timm=={version}', '-d', str(folder)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    archives = sorted(folder.glob('timm-*.tar.gz'))
    if done.returncode or not archives:
        sys.exit(f"could not download timm {version}'s source distribution from PyPI:\n{done.stderr.strip()}\n"
                 f"give a test_models.py of a timm checkout with --tests")
    with tarfile.open(archives[0]) as tar:
        member = next((m for m in tar.getmembers() if m.name.endswith('/tests/test_models.py')), None)
        if member is None: sys.exit(f"{archives[0].name} has no tests/test_models.py")
        (folder / 'test_models.py').write_bytes(tar.extractfile(member).read())
    return folder / 'test_models.py'


def edited(text: str, source: str) -> str:
    "The test file with our patterns in the lists timm uses for its own models of the same kind."
    for name, pattern in EDITS.items():
        anchor = re.compile(rf'^{name} = \[', re.M)
        if len(anchor.findall(text)) != 1:
            sys.exit(f"{source}: expected one `{name} = [` line; timm's test file has changed, update scripts/timm_suite.py")
        text = anchor.sub(f"{name} = [{pattern!r}, ", text)
    return text


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--tests', type=Path, help="timm's tests/test_models.py (default: from the installed version's sdist)")
    args, pytest_args = p.parse_known_args(argv)
    import timm
    with tempfile.TemporaryDirectory(prefix='timm_suite_') as tmp:
        tmp = Path(tmp)
        source = args.tests.expanduser() if args.tests else sdist_tests(timm.__version__, tmp)
        if not source.is_file(): sys.exit(f"{source}: no such file")
        run = tmp / 'run'; run.mkdir()
        (run / 'test_models.py').write_text(edited(source.read_text(), str(source)))
        (run / 'conftest.py').write_text('import deepvit_nb.interop  # registers our configurations with timm\n')
        print(f"timm {timm.__version__}: {source if args.tests else 'tests/test_models.py from its sdist'}, "
              f"with {', '.join(f'{v!r} in {k}' for k, v in EDITS.items())}", flush=True)
        cmd = [sys.executable, '-m', 'pytest', 'test_models.py', '-k', 'deepvit', '-q', '-rfEs', '-p', 'no:cacheprovider',
               '-W', 'ignore::pytest.PytestUnknownMarkWarning', *pytest_args]
        return subprocess.run(cmd, cwd=run).returncode


if __name__ == '__main__':
    sys.exit(main())
