"""Archs, registered into BasicSR's ARCH_REGISTRY on import.

Like BasicSR, every ``*_arch.py`` file in this folder is imported; the layer ``FastDeconv`` is registered
too so that a single layer can be built from options.
"""
import importlib
from os import path as osp

from deconv_basicsr import compat

compat.apply()  # BasicSR importable first

from basicsr.utils import scandir  # noqa: E402
from basicsr.utils.registry import ARCH_REGISTRY

from deconv_basicsr.layers import FastDeconv

ARCH_REGISTRY.register()(FastDeconv)

_arch_folder = osp.dirname(osp.abspath(__file__))
_arch_modules = [
    importlib.import_module(f'deconv_basicsr.archs.{osp.splitext(name)[0]}')
    for name in sorted(scandir(_arch_folder)) if name.endswith('_arch.py')
]
