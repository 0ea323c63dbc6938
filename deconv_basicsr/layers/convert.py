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


def conv_names(module):
    """Qualified names of the plain ``nn.Conv2d`` layers inside ``module`` (subclasses are not plain)."""
    return [name for name, child in module.named_modules() if type(child) is nn.Conv2d]


def convert_convs(module, names=None, **deconv_settings):
    """Replace, in place, the named plain convolutions of ``module`` by ``deconv_from_conv(conv)``.

    Module names, and so checkpoint keys of parameters, are unchanged.

    Args:
        module (nn.Module): The network.
        names (list[str] | None): Qualified names of convs to replace; None replaces every plain conv.
        **deconv_settings: FastDeconv's own arguments.

    Returns:
        nn.Module: ``module`` itself.
    """
    for name in conv_names(module) if names is None else names:
        conv = module.get_submodule(name)
        if type(conv) is not nn.Conv2d:
            raise ValueError(f'{name!r} is a {type(conv).__name__}, not a plain nn.Conv2d')
        module.set_submodule(name, deconv_from_conv(conv, **deconv_settings))
    return module
