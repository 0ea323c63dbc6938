"""Layers, in pure torch (nothing here imports BasicSR): ``FastDeconv``, its inverse square roots, its fold,
conversion of existing networks, fusing for deployment, recalibration of running statistics."""
from deconv_basicsr.layers.convert import conv_names, convert_convs, deconv_from_conv
from deconv_basicsr.layers.fast_deconv import FastDeconv, effective_block, name_deconv_layers
from deconv_basicsr.layers.fold import fold_whitening
from deconv_basicsr.layers.fuse import fuse_deconv, fuse_state_dict, fused_conv
from deconv_basicsr.layers.recalibrate import recalibrate_deconv_stats
from deconv_basicsr.layers.settings import (DECONV_SETTINGS, deconvolve, split_deconv_settings,
                                            takes_deconv_settings)

__all__ = ['FastDeconv', 'effective_block', 'name_deconv_layers', 'conv_names', 'convert_convs', 'deconv_from_conv',
           'fold_whitening', 'fuse_deconv', 'fuse_state_dict', 'fused_conv', 'recalibrate_deconv_stats',
           'DECONV_SETTINGS', 'deconvolve', 'split_deconv_settings', 'takes_deconv_settings']
