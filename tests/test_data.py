"Fashion-MNIST on a fresh machine: no system copy, no general internet, only the package registries."
import shutil, subprocess, sys, textwrap
from pathlib import Path

import pytest

from conftest import ROOT

FRESH = textwrap.dedent('''
    import sys
    from pathlib import Path
    import deepvit_nb.data as data
    data.DEBIAN_FASHION_MNIST = Path(sys.argv[1]) / 'no-system-copy'      # as if the package were not installed
    def offline(cache): raise OSError('no route to the canonical mirrors')   # as without general internet
    data._download = offline
    ds = data.fashion_mnist('test')
    print(len(ds), sorted(p.name for p in data.fashion_mnist_cache().iterdir()))
    data._SERVED.clear()
    print(len(data.fashion_mnist('train', download=False)))               # the cache serves from now on
''')

def fresh(tmp_path, *env):
    return subprocess.run([sys.executable, '-c', FRESH, str(tmp_path)], capture_output=True, text=True, timeout=900,
                          env={'PATH': '/usr/bin:/bin:' + str(Path(sys.executable).parent), 'HOME': str(tmp_path),
                               'XDG_CACHE_HOME': str(tmp_path / 'cache'), **dict(env)})

@pytest.mark.skipif(not (shutil.which('apt-get') and shutil.which('dpkg-deb')), reason='no apt-get/dpkg-deb on this machine')
def test_fetched_from_debian_without_network_or_system_copy(tmp_path):
    res = fresh(tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    lines = res.stdout.splitlines()
    assert lines[0].startswith('10000 [') and 'train-images-idx3-ubyte.gz' in lines[0], res.stdout
    assert lines[1] == '60000', res.stdout
    assert f"Fashion-MNIST from Debian's package, fetched into {tmp_path}/cache/deepvit_nb/fashion-mnist" in res.stderr
    assert f"Fashion-MNIST from the cache {tmp_path}/cache/deepvit_nb/fashion-mnist" in res.stderr

def test_every_source_failing_is_listed(tmp_path):
    script = FRESH.replace("ds = data.fashion_mnist('test')", "data._debian_package = offline\nds = data.fashion_mnist('test')")
    res = subprocess.run([sys.executable, '-c', script, str(tmp_path)], capture_output=True, text=True, timeout=300,
                         env={'PATH': '/usr/bin:/bin', 'HOME': str(tmp_path), 'XDG_CACHE_HOME': str(tmp_path / 'cache')})
    assert res.returncode == 1
    for source in ('the cache', "Debian's copy", 'the canonical download', "Debian's package"):
        assert source in res.stderr, res.stderr[-2000:]
    assert 'no route to the canonical mirrors' in res.stderr and 'Pass data_dir=FOLDER' in res.stderr
