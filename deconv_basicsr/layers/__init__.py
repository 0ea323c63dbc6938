"""Layers: ``FastDeconv``, the inverse square roots it uses, and conversion of existing networks."""
from deconv_basicsr.layers.convert import conv_names, convert_convs, deconv_from_conv
from deconv_basicsr.layers.fast_deconv import FastDeconv, effective_block

__all__ = ['FastDeconv', 'effective_block', 'conv_names', 'convert_convs', 'deconv_from_conv']
