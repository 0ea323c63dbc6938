"""Deployment: FastDeconv layers as the plain convolutions they compute in eval mode.

In eval mode a FastDeconv whitens with its running statistics, so it *is* a convolution with the folded
kernel ``D W`` and bias ``b - mu D W``. ``fuse_deconv`` swaps every FastDeconv of a network for that
``nn.Conv2d``: the network runs at the cost of the original one, and its checkpoint has the original
network's keys and sizes (the d x d statistics are gone). ``fuse_state_dict`` and ``fuse_checkpoint`` do the
same on a checkpoint alone, without building the network (``scripts/convert_checkpoint.py``).
"""
import torch
from torch import nn

from deconv_basicsr.layers.fast_deconv import FastDeconv
from deconv_basicsr.layers.fold import fold_whitening

STATISTIC_KEYS = ('running_mean', 'running_deconv', 'num_batches_tracked')


@torch.no_grad()
def fused_conv(layer):
    """An ``nn.Conv2d`` equal to ``layer`` (a FastDeconv) in eval mode, on the same device and dtype.

    It always has a bias: the mean correction lives there even when ``layer`` has none.
    """
    weight, bias = layer.eval_kernel()
    conv = nn.Conv2d(
        layer.in_channels,
        layer.out_channels,
        layer.kernel_size,
        stride=layer.stride,
        padding=layer.padding,
        dilation=layer.dilation,
        groups=layer.groups,
        bias=True,
        device=layer.weight.device,
        dtype=layer.weight.dtype)
    conv.weight.copy_(weight)
    conv.bias.copy_(bias)
    conv.train(layer.training)
    return conv


def fuse_deconv(model):
    """Replace, in place, every FastDeconv inside ``model`` by ``fused_conv(layer)``; returns ``model``.

    Module names are kept, so the result's state_dict has the keys of the plain network (e.g. a fused
    DeconvEDSR loads strictly into BasicSR's EDSR). A FastDeconv passed as ``model`` itself is returned fused.
    Fusing freezes the whitening at the running statistics: train the unfused network, fuse to deploy.
    """
    if isinstance(model, FastDeconv):
        return fused_conv(model)
    for name, module in list(model.named_modules()):
        if isinstance(module, FastDeconv):
            model.set_submodule(name, fused_conv(module))
    return model


def fuse_state_dict(state_dict):
    """A copy of ``state_dict`` where every FastDeconv's entries are replaced by its fused conv's.

    FastDeconv layers are recognised by their ``running_deconv`` entry; ``fold_whitening`` reads the layer
    geometry (groups, whitened block) from the shapes, so no network needs to be built. Other entries are
    kept as they are.
    """
    fused = dict(state_dict)
    prefixes = [key[:-len('running_deconv')] for key in state_dict if key.endswith('running_deconv')]
    for prefix in prefixes:
        weight, bias = state_dict[prefix + 'weight'], state_dict.get(prefix + 'bias')
        # Fold in at least float32, whatever precision the checkpoint was saved in.
        dtype = torch.promote_types(weight.dtype, torch.float32)
        deconv = state_dict[prefix + 'running_deconv'].to(dtype)
        deconv = deconv.reshape(-1, *deconv.shape[-2:])  # the reference layer's (d, d): one set
        mean = state_dict[prefix + 'running_mean'].to(dtype).reshape(deconv.shape[:2])
        with torch.no_grad():
            kernel, folded_bias = fold_whitening(weight.to(dtype), None if bias is None else bias.to(dtype), mean, deconv)
        for key in STATISTIC_KEYS:
            fused.pop(prefix + key, None)
        fused[prefix + 'weight'] = kernel.to(weight.dtype)
        fused[prefix + 'bias'] = folded_bias.to(weight.dtype)
    return fused


def fuse_checkpoint(checkpoint):
    """``fuse_state_dict`` applied to a checkpoint: a state_dict, or BasicSR's dict of them.

    BasicSR saves networks as ``{'params': ..., 'params_ema': ...}`` (any key whose value is a state_dict
    with FastDeconv entries is converted; other values are kept).

    Returns:
        tuple: The converted checkpoint, and how many FastDeconv layers were fused in each converted
        state_dict, ``{key: count}`` (key None for a bare state_dict).
    """

    def is_state_dict(value):
        return isinstance(value, dict) and value and all(isinstance(v, torch.Tensor) for v in value.values())

    def count(state_dict):
        return sum(key.endswith('running_deconv') for key in state_dict)

    if is_state_dict(checkpoint):
        return fuse_state_dict(checkpoint), {None: count(checkpoint)}
    converted, fused = dict(checkpoint), {}
    for key, value in checkpoint.items():
        if is_state_dict(value) and count(value):
            converted[key], fused[key] = fuse_state_dict(value), count(value)
    return converted, fused
