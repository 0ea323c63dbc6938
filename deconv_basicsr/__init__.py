"""Network deconvolution (Ye et al., ICLR 2020) for BasicSR.

Importing this package (or ``deconv_basicsr.layers``) imports torch only: the layer ``FastDeconv`` and its
tools need no BasicSR. ``import deconv_basicsr.plugin`` makes BasicSR 1.4.2 importable (``compat``) and
registers the archs and the model into BasicSR's registries; the installed start-up hook does that when a
process first imports ``basicsr``. The project's training features (exact resume, Ctrl-C, start-up
checks, ...) live in ``deconv_basicsr.training``.
"""
from deconv_basicsr.layers import FastDeconv, fuse_deconv

__all__ = ['FastDeconv', 'fuse_deconv']
__version__ = '0.1.0'
