"""Packaging for deconv-basicsr.

Besides the package, installs the top-level module ``_deconv_basicsr_autoload`` and
``deconv_basicsr_autoload.pth`` into site-packages, so that BasicSR's own scripts load the plugin (see
``_deconv_basicsr_autoload.py``). Wheels get the .pth from ``build_py``; editable installs (PEP 660) from
``editable_wheel``, whose strategies only write their own files.
"""
import re
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py
from setuptools.command.editable_wheel import editable_wheel

HERE = Path(__file__).resolve().parent

# Site-packages processes .pth files in name order: this name sorts after setuptools' editable
# "__editable__.*.pth", which must install its finder before this line can import the module.
PTH_NAME = 'deconv_basicsr_autoload.pth'
PTH_CONTENT = 'import _deconv_basicsr_autoload\n'
STUDY_REQUIRES = ['matplotlib']
# ONNX export (onnxscript is torch's exporter's) and the tools that read the exports, checked by the tests.
EXPORT_REQUIRES = ['onnx==1.23.2', 'onnxscript==0.7.2', 'onnxruntime==1.32.0', 'spandrel==0.4.2']


def read_version():
    """Read ``__version__`` from the package without importing it (it imports torch)."""
    text = (HERE / 'deconv_basicsr' / '__init__.py').read_text(encoding='utf-8')
    return re.search(r"^__version__ = '([^']+)'", text, re.MULTILINE).group(1)


class build_py_with_pth(build_py):
    """``build_py`` that also writes the auto-load .pth at the root of ``build_lib`` (hence of wheels)."""

    def run(self):
        super().run()
        target = Path(self.build_lib, PTH_NAME)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(PTH_CONTENT, encoding='utf-8')


class _StrategyWithPth:
    """Wraps one of setuptools' editable strategies to add the auto-load .pth to the wheel."""

    def __init__(self, strategy):
        self.strategy = strategy

    def __call__(self, wheel, files, mapping):
        self.strategy(wheel, files, mapping)
        wheel.writestr(PTH_NAME, PTH_CONTENT.encode('utf-8'))

    def __enter__(self):
        self.strategy.__enter__()
        return self

    def __exit__(self, *exc_info):
        return self.strategy.__exit__(*exc_info)


class editable_wheel_with_pth(editable_wheel):
    """``editable_wheel`` that ships the auto-load .pth beside setuptools' own editable .pth."""

    def _select_strategy(self, *args, **kwargs):
        return _StrategyWithPth(super()._select_strategy(*args, **kwargs))


setup(
    name='deconv-basicsr',
    version=read_version(),
    description='Network deconvolution layers and archs for BasicSR',
    long_description=(HERE / 'README.md').read_text(encoding='utf-8') if (HERE / 'README.md').exists() else '',
    long_description_content_type='text/markdown',
    packages=find_packages(include=['deconv_basicsr', 'deconv_basicsr.*']),
    py_modules=['_deconv_basicsr_autoload'],
    package_data={'deconv_basicsr.prepare': ['benchmark_checksums.sha256']},  # scripts/prepare_benchmark.py --set
    python_requires='>=3.10',  # torch 2.14 needs it
    install_requires=[
        'torch',
        'torchvision',
        'basicsr==1.4.2',
        'numpy',
        'opencv-python',
        'lmdb',
        'pyyaml',
        'tqdm',
        'scikit-image',  # ships the photos of the embedded default dataset
        'setuptools',  # BasicSR imports distutils, which Python 3.12 no longer has
    ],
    # The research code (deconv_basicsr.experiments, scripts/study.py and the other studies) plots its record.
    extras_require={'study': STUDY_REQUIRES, 'export': EXPORT_REQUIRES,
                    'test': ['pytest', 'pytest-xdist', *STUDY_REQUIRES, *EXPORT_REQUIRES]},
    entry_points={
        'console_scripts': [
            'deconv-basicsr-train = deconv_basicsr.train:main',
            'deconv-basicsr-test = deconv_basicsr.test:main',
            'deconv-basicsr-upscale = deconv_basicsr.upscale:main',
            'deconv-basicsr-export = deconv_basicsr.export:main',
        ],
    },
    cmdclass={'build_py': build_py_with_pth, 'editable_wheel': editable_wheel_with_pth},
    zip_safe=False,
)
