"""Models, registered into BasicSR's MODEL_REGISTRY on import.

Like BasicSR (and Real-ESRGAN), every ``*_model.py`` file in this folder is imported.
"""
import importlib
from os import path as osp

from deconv_basicsr import compat

compat.apply()  # BasicSR importable first

from basicsr.utils import scandir  # noqa: E402

_model_folder = osp.dirname(osp.abspath(__file__))
_model_modules = [
    importlib.import_module(f'deconv_basicsr.models.{osp.splitext(name)[0]}')
    for name in sorted(scandir(_model_folder)) if name.endswith('_model.py')
]
