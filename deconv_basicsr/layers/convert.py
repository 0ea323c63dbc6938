"""Turn the ``nn.Conv2d`` layers of an existing network into ``FastDeconv`` layers."""
from torch import nn

from deconv_basicsr.layers.fast_deconv import FastDeconv


def deconv_from_conv(conv, **deconv_settings):
    """A ``FastDeconv`` with ``conv``'s geometry and a copy of its weight and bias.

    Args:
        conv (nn.Conv2d): A convolution with zero padding.
        **deconv_settings: FastDeconv's own arguments (``block``, ``eps``, ``n_iter``, ...).
    """
    if conv.padding_mode != 'zeros' or isinstance(conv.padding, str):
        raise ValueError(f'FastDeconv supports numeric zero padding only; got padding={conv.padding!r}, '
                         f'padding_mode={conv.padding_mode!r}')
    deconv = FastDeconv(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        groups=conv.groups,
        bias=conv.bias is not None,
        **deconv_settings).to(device=conv.weight.device, dtype=conv.weight.dtype)
    deconv.load_state_dict(conv.state_dict(), strict=False)
    return deconv


def convert_convs(module, **deconv_settings):
    """Replace, in place, every plain ``nn.Conv2d`` inside ``module`` by ``deconv_from_conv(conv)``.

    Module names, and so checkpoint keys of parameters, are unchanged. Returns ``module``.
    """
    for name, child in module.named_children():
        if type(child) is nn.Conv2d:
            setattr(module, name, deconv_from_conv(child, **deconv_settings))
        else:
            convert_convs(child, **deconv_settings)
    return module
