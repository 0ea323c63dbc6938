"""Network deconvolution (Ye et al., ICLR 2020) for BasicSR.

Importing this package patches the installed BasicSR where it is broken (see ``compat``) and registers
the layer ``FastDeconv`` and the archs ``DeconvEDSR``, ``SRCNN`` and ``DeconvSRCNN`` into BasicSR's
``ARCH_REGISTRY``, and the model ``DeconvSRModel`` into its ``MODEL_REGISTRY``.
"""
from deconv_basicsr import compat

compat.apply()

from deconv_basicsr.layers import FastDeconv, fuse_deconv  # noqa: E402
from deconv_basicsr import archs  # noqa: E402,F401
from deconv_basicsr import models  # noqa: E402,F401

__all__ = ['FastDeconv', 'fuse_deconv']
__version__ = '0.1.0'
