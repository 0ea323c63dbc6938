import warnings
from fnmatch import fnmatchcase

from basicsr.archs import build_network
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

from deconv_basicsr.layers import conv_names, deconvolve, takes_deconv_settings

_GLOBAL_POOLS = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


def _on_pooled_features(net, name):
    """Whether the conv ``name`` is a 1x1 conv beside a global pooling (channel attention, SE).

    Such a conv sees one position per image: its covariance is ~eps*I and D ~ 316*I, so it is never whitened.
    """
    conv = net.get_submodule(name)
    parent = net.get_submodule(name.rpartition('.')[0])
    return conv.kernel_size == (1, 1) and any(isinstance(m, _GLOBAL_POOLS) for m in parent.children())


@ARCH_REGISTRY.register()
@takes_deconv_settings
def DeconvNet(arch, include=('*', ), exclude=(), **deconv_settings):
    """Any registered BasicSR arch with selected convolutions turned into FastDeconv layers.

    Builds ``arch`` with BasicSR's ``build_network`` and replaces the plain ``nn.Conv2d`` layers whose
    qualified module names match a pattern of ``include`` and none of ``exclude`` (shell-style patterns,
    ``*`` also crosses dots: ``body.*.conv1``). The network returned *is* the wrapped arch, so checkpoints keep
    its parameter names. The first conv in module order is taken as the input layer (``input_layer``).
    1x1 convs on globally pooled features (channel attention in RCAN, SE blocks) are
    skipped with a warning.

    Example (YAML)::

        network_g:
          type: DeconvNet
          arch: {type: MSRResNet, num_in_ch: 3, num_out_ch: 3, num_feat: 64, num_block: 16, upscale: 4}
          include: ['body.*']
          block: 64

    Args:
        arch (dict): The wrapped arch's options, with its ``type``.
        include (list[str]): Patterns of conv names to deconvolve. Default: every conv.
        exclude (list[str]): Patterns of conv names to keep plain. Default: none.
        input_layer (str | dict): Settings of the input layer, if selected: 'reference' (Ye et al.'s
            input-layer convention, ``n_iter=15, freeze=True``), 'same', or a dict of FastDeconv settings
            overriding the others. Default: 'reference'.
        **deconv_settings: FastDeconv's settings (``block``, ``n_iter``, ``eps``, ...), the same for every
            deconvolved layer; see ``deconv_basicsr.layers.FastDeconv``.
    """
    if not isinstance(arch, dict) or 'type' not in arch:
        raise ValueError(f'DeconvNet: network_g.arch must be an arch spec with a type, got {arch!r}')
    include = [include] if isinstance(include, str) else list(include)
    exclude = [exclude] if isinstance(exclude, str) else list(exclude)
    net = build_network(dict(arch))
    candidates = conv_names(net)
    for key, patterns in (('include', include), ('exclude', exclude)):
        for pattern in patterns:
            if not any(fnmatchcase(name, pattern) for name in candidates):
                raise ValueError(f'DeconvNet: network_g.{key} pattern {pattern!r} matches no conv of '
                                 f"{arch['type']}; its convs are: {', '.join(candidates)}")
    selected = [
        name for name in candidates
        if any(fnmatchcase(name, p) for p in include) and not any(fnmatchcase(name, p) for p in exclude)
    ]
    pooled = [name for name in selected if _on_pooled_features(net, name)]
    if pooled:
        warnings.warn(f'DeconvNet: keeping {len(pooled)} 1x1 conv(s) on globally pooled features plain '
                      f'(e.g. {pooled[0]}): one sample per image cannot be whitened', stacklevel=2)
    return deconvolve(DeconvNet, net, [name for name in selected if name not in pooled], candidates[0],
                      deconv_settings)
