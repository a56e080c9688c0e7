"""Package metadata lives in settings.ini, the one file that nbdev and pip both read."""
from configparser import ConfigParser
from pathlib import Path

import setuptools

cfg = ConfigParser(delimiters=['='])
cfg.read(Path(__file__).with_name('settings.ini'), encoding='utf-8')
cfg = cfg['DEFAULT']

licenses = {'apache2': ('Apache Software License 2.0', 'OSI Approved :: Apache Software License')}
statuses = ['1 - Planning', '2 - Pre-Alpha', '3 - Alpha', '4 - Beta', '5 - Production/Stable', '6 - Mature', '7 - Inactive']
lic = licenses[cfg['license']]
requirements = cfg.get('requirements', '').split()
dev_requirements = cfg.get('dev_requirements', '').split()
# Benchmarks compare against lucidrains' DeepViT as well; it is only needed there.
bench_requirements = ['timm>=1.0', 'vit-pytorch>=1.6']
# The Triton kernels (chapter 07) are optional: CUDA builds of PyTorch bring Triton on Linux, CPU builds do not.
gpu_requirements = ['triton>=3.4']
# Interop (chapter 09): timm's registry, and ONNX export (dynamo exporter) checked with ONNX Runtime.
timm_requirements = ['timm>=1.0']
onnx_requirements = ['onnx>=1.17', 'onnxscript>=0.5', 'onnxruntime>=1.20']
# Attention analysis of Hugging Face models (chapter 03): transformers' ViT family.
hf_requirements = ['transformers>=4.40']

setuptools.setup(
    name=cfg['lib_name'],
    version=cfg['version'],
    description=cfg['description'],
    long_description=Path(__file__).with_name('README.md').read_text(encoding='utf-8'),
    long_description_content_type='text/markdown',
    author=cfg['author'], author_email=cfg['author_email'],
    license=lic[0],
    url=cfg['git_url'],
    keywords=cfg['keywords'].split(),
    classifiers=[f'Development Status :: {statuses[int(cfg["status"])]}',
                 f'Intended Audience :: {cfg["audience"]}',
                 f'License :: {lic[1]}',
                 f'Natural Language :: {cfg["language"]}',
                 'Programming Language :: Python :: 3'],
    packages=setuptools.find_packages(include=[cfg['lib_name'], cfg['lib_name'] + '.*']),
    include_package_data=True,
    python_requires=f'>={cfg["min_python"]}',
    install_requires=requirements,
    extras_require={'dev': dev_requirements, 'bench': bench_requirements, 'gpu': gpu_requirements,
                    'timm': timm_requirements, 'onnx': onnx_requirements,
                    'hf': hf_requirements},
    entry_points={'console_scripts': cfg.get('console_scripts', '').split(),
                  'nbdev': [f'{cfg["lib_name"]}={cfg["lib_name"]}._modidx:d']},
    zip_safe=False,
)
