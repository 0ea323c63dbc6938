"""FastDeconv's settings as the archs take them from an option file, defined once: by FastDeconv's signature.

An arch that deconvolves some of its convolutions takes ``**deconv_settings`` and declares them with
``@takes_deconv_settings``, which writes them into its signature (``inspect.signature`` and ``help`` show
them, and start-up checks validate option files against it). A new FastDeconv argument is then a key of
every such arch with no further edit. ``deconvolve`` checks what an arch received and converts its chosen
convolutions, the input layer with its own settings (``split_deconv_settings``).

The input layer (a convolution on the network's input pixels) follows Ye et al.'s convention by default:
their ImageNet and VGG models deconvolve it with ``n_iter=15`` and ``freeze=True``. Pixel correlations of
natural images are strong (the covariance of raw patches is ill-conditioned), so more Newton–Schulz steps
are needed to whiten it, and the input distribution does not change as the network trains, so a periodic
refresh of its statistics is enough.
"""
import difflib
import inspect

from deconv_basicsr.layers.convert import convert_convs
from deconv_basicsr.layers.fast_deconv import FastDeconv

_GEOMETRY = ('self', 'in_channels', 'out_channels', 'kernel_size', 'stride', 'padding', 'dilation', 'groups', 'bias')

#: FastDeconv's settings and their defaults, read from its signature.
DECONV_SETTINGS = {
    name: param.default
    for name, param in inspect.signature(FastDeconv.__init__).parameters.items() if name not in _GEOMETRY
}

#: Named conventions for the input layer: the settings they override.
INPUT_LAYER_CONVENTIONS = {'reference': {'n_iter': 15, 'freeze': True}, 'same': {}}

#: The key of deconv archs that sets the input layer's convention.
INPUT_LAYER_KEY = 'input_layer'


def takes_deconv_settings(arch):
    """Declare in ``arch``'s signature the settings its ``**deconv_settings`` accepts (keyword-only)."""
    signature = inspect.signature(arch)
    params = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    params.append(inspect.Parameter(INPUT_LAYER_KEY, inspect.Parameter.KEYWORD_ONLY, default='reference'))
    params += [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default)
               for name, default in DECONV_SETTINGS.items() if name not in signature.parameters]
    arch.__signature__ = signature.replace(parameters=params)
    return arch


def unknown_option_message(key, owner, known):
    """``network_g.<key>: unknown option for <owner>; did you mean <closest>?`` (the hint when one is close)."""
    close = difflib.get_close_matches(key, list(known), n=1)
    hint = f'; did you mean {close[0]}?' if close else f'; its options are: {", ".join(known)}'
    return f'network_g.{key}: unknown option for {owner}{hint}'


def split_deconv_settings(arch, options):
    """Check the ``**deconv_settings`` ``arch`` received; return the inner and the input layers' settings.

    Args:
        arch (callable): The arch (decorated with ``takes_deconv_settings``), for its name and option names.
        options (dict): What its ``**deconv_settings`` received.

    Returns:
        tuple[dict, dict]: Settings for the deconvolved layers, and for a deconvolved input layer.
    """
    known = list(inspect.signature(arch).parameters)
    options = dict(options)
    for key in options:
        if key not in DECONV_SETTINGS and key != INPUT_LAYER_KEY:
            raise ValueError(unknown_option_message(key, arch.__name__, known))
    input_layer = options.pop(INPUT_LAYER_KEY, 'reference')
    if isinstance(input_layer, str):
        if input_layer not in INPUT_LAYER_CONVENTIONS:
            raise ValueError(f'network_g.{INPUT_LAYER_KEY}: {arch.__name__} takes one of '
                             f'{sorted(INPUT_LAYER_CONVENTIONS)} or a dict of FastDeconv settings, got {input_layer!r}')
        overrides = INPUT_LAYER_CONVENTIONS[input_layer]
    elif isinstance(input_layer, dict):
        for key in input_layer:
            if key not in DECONV_SETTINGS:
                raise ValueError(unknown_option_message(f'{INPUT_LAYER_KEY}.{key}', arch.__name__,
                                                        [f'{INPUT_LAYER_KEY}.{name}' for name in DECONV_SETTINGS]))
        overrides = input_layer
    else:
        raise ValueError(f'network_g.{INPUT_LAYER_KEY}: {arch.__name__} takes a convention name or a dict, '
                         f'got {input_layer!r}')
    return options, {**options, **overrides}


def deconvolve(arch, module, names, input_name, options):
    """Turn the convs ``names`` of ``module`` into FastDeconv layers with the settings ``arch`` received.

    Args:
        arch (callable): The arch (decorated with ``takes_deconv_settings``), for its name and option names.
        module (nn.Module): The network being built.
        names (list[str]): Qualified names of the convs to deconvolve.
        input_name (str): The conv on the network's input pixels; if in ``names``, it follows ``input_layer``.
        options (dict): What the arch's ``**deconv_settings`` received.

    Returns:
        nn.Module: ``module`` itself.
    """
    inner, first = split_deconv_settings(arch, options)
    convert_convs(module, [name for name in names if name != input_name], **inner)
    return convert_convs(module, [name for name in names if name == input_name], **first)
