"""Use a trained network: load it from a checkpoint, fused for inference, and upscale images of any size.

``load_network`` reads a BasicSR checkpoint (``params_ema`` or ``params``, or a bare state_dict; trained or
already fused by ``scripts/convert_checkpoint.py``) into the network an option file's ``network_g``
describes, or, without one, into BasicSR's ``EDSR`` when the weights have EDSR's layout (``edsr_options``).
Every FastDeconv is fused into the plain convolution it computes in eval mode. ``upscale_tensor`` runs the
network whole or tile by tile; ``upscale_image`` does it on 8- or 16-bit images (gray, BGR, BGRA) as OpenCV
reads them. The commands ``deconv_basicsr.upscale`` and ``deconv_basicsr.export`` parse arguments and call
these (export formats: ``deconv_basicsr.interchange``).
"""
import os

import numpy as np
import torch
from torch import nn

import deconv_basicsr.plugin  # noqa: F401  (BasicSR importable, the archs registered)
from basicsr.archs import build_network

from deconv_basicsr.imresize import imresize
from deconv_basicsr.layers import fuse_deconv, fuse_state_dict

PARAM_KEYS = ('params_ema', 'params')  # BasicSR's keys, the averaged weights first as in its test options
PRECISIONS = {'fp32': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16}
TILE_PAD = 40  # covers the receptive field of EDSR with up to 18 blocks (2 * blocks + 4 input pixels)


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, or does not fit the network; the message names the file."""


def read_state_dict(path):
    """The network weights in a checkpoint: ``params_ema``, else ``params``, else the bare state_dict."""
    if not os.path.isfile(path):
        raise CheckpointError(f'{path}: no such file')
    try:
        checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # torch raises many types for a file that is no checkpoint
        raise CheckpointError(f'{path}: not a PyTorch checkpoint of tensors ({type(err).__name__})') from err
    if isinstance(checkpoint, dict):
        checkpoint = next((checkpoint[key] for key in PARAM_KEYS if key in checkpoint), checkpoint)
    is_state_dict = isinstance(checkpoint, dict) and checkpoint and all(
        isinstance(v, torch.Tensor) for v in checkpoint.values())
    if not is_state_dict:
        raise CheckpointError(f'{path}: holds no network weights (neither {" nor ".join(PARAM_KEYS)} nor a state_dict)')
    return checkpoint


def edsr_options(state_dict):
    """``network_g`` of BasicSR's ``EDSR`` for a state_dict with EDSR's layout (DeconvEDSR's, fused), else None.

    Channels, features, blocks and scale follow from the shapes. ``res_scale``, ``img_range`` and ``rgb_mean``
    are not in a state_dict: BasicSR's defaults (1, 255, DIV2K's mean) are assumed, those of every option
    file of this project.
    """
    required = ('conv_first.weight', 'body.0.conv1.weight', 'conv_after_body.weight', 'upsample.0.weight',
                'conv_last.weight')
    if not all(key in state_dict for key in required):
        return None
    num_feat, num_in_ch = state_dict['conv_first.weight'].shape[:2]
    num_block = len({key.split('.')[1] for key in state_dict if key.startswith('body.')})
    # BasicSR's Upsample: per factor 2 a conv to 4 * num_feat channels (modules 0, 2, ...), or one to 9 * for 3.
    convs = [key for key in state_dict if key.startswith('upsample.') and key.endswith('.weight')]
    ratio = state_dict['upsample.0.weight'].shape[0] // num_feat
    upscale = 3 if ratio == 9 else 2**len(convs)
    return dict(type='EDSR', num_in_ch=num_in_ch, num_out_ch=state_dict['conv_last.weight'].shape[0],
                num_feat=num_feat, num_block=num_block, upscale=upscale)


def read_network_options(opt_path):
    """``network_g`` of a BasicSR option file, read by the project's one option loader (``load_options``).

    Raises:
        OptionFileError: A file that is missing, not YAML, or has no ``network_g``; one line naming it.
    """
    from deconv_basicsr.training.options import OptionFileError, load_options

    opt = load_options(opt_path)
    if not isinstance(opt.get('network_g'), dict):
        raise OptionFileError(f'Option file {opt_path}: has no network_g')
    return opt['network_g']


def load_network(checkpoint, network_g=None, device='cpu', dtype=torch.float32):
    """The network of ``checkpoint``, fused (no FastDeconv left), in eval mode, without gradients.

    Args:
        checkpoint (str): BasicSR checkpoint (``net_g_*.pth``) or bare state_dict, trained or fused.
        network_g (dict | None): The network's options (an option file's ``network_g``). None: the weights
            must have EDSR's layout (``edsr_options``). Default: None.
        device (str | torch.device): Where the network runs. Default: 'cpu'.
        dtype (torch.dtype): Its precision. Default: float32.

    Returns:
        nn.Module: The network.
    """
    state_dict = fuse_state_dict(read_state_dict(checkpoint))
    if network_g is None:
        network_g = edsr_options(state_dict)
        if network_g is None:
            raise CheckpointError(f'{checkpoint}: the weights do not have EDSR\'s layout; pass the option file '
                                  'whose network_g describes the network (--opt)')
    # Fusing first gives the network the fused checkpoint's keys, so trained and fused checkpoints both load.
    try:
        net = fuse_deconv(build_network(dict(network_g)).eval())
    except (KeyError, TypeError, ValueError) as err:  # an unknown type, or arguments it does not take
        raise ValueError(f'network_g {network_g}: {" ".join(str(err).split())}') from err
    mismatch = state_dict_mismatch(net.state_dict(), state_dict)
    if mismatch:
        raise CheckpointError(f'{checkpoint}: does not fit network_g (type {network_g["type"]}): {mismatch}')
    net.load_state_dict(state_dict, strict=True)
    return net.to(device=device, dtype=dtype).requires_grad_(False)


def state_dict_mismatch(expected, found, examples=2):
    """How ``found`` differs from ``expected`` in keys and shapes, in one line ('' if it does not)."""
    missing = [key for key in expected if key not in found]
    unexpected = [key for key in found if key not in expected]
    reshaped = [f'{key} {list(found[key].shape)} for {list(value.shape)}' for key, value in expected.items()
                if key in found and found[key].shape != value.shape]
    parts = [f'{len(keys)} {what} ({", ".join(keys[:examples])}{", ..." if len(keys) > examples else ""})'
             for what, keys in (('missing', missing), ('unexpected', unexpected), ('of another shape', reshaped))
             if keys]
    return '; '.join(parts)


def input_channels(net):
    """Channels the network takes: those of its first convolution."""
    return next(m for m in net.modules() if isinstance(m, nn.Conv2d)).in_channels


@torch.no_grad()
def upscale_tensor(net, x, tile=0, tile_pad=TILE_PAD):
    """``net(x)``, whole or tile by tile.

    Each ``tile`` x ``tile`` region of ``x`` runs with up to ``tile_pad`` pixels of its surroundings and
    only its own part of the output is kept, so the result equals the whole image's (to float rounding)
    when ``tile_pad`` covers the network's receptive field (docs/inference.md); at the image border the
    network sees the border, as without tiles.

    Args:
        net (nn.Module): Network whose output is its input's size times an integer scale.
        x (Tensor): (n, c, h, w) input.
        tile (int): Side of the tiles in input pixels; 0 runs the whole image. Default: 0.
        tile_pad (int): Input pixels of context on each side of a tile. Default: ``TILE_PAD`` (40).

    Returns:
        Tensor: (n, c_out, h * scale, w * scale) output.
    """
    if not tile:
        return net(x)
    h, w = x.shape[-2:]
    out = None
    for top in range(0, h, tile):
        for left in range(0, w, tile):
            bottom, right = min(top + tile, h), min(left + tile, w)
            y0, x0 = max(top - tile_pad, 0), max(left - tile_pad, 0)
            y1, x1 = min(bottom + tile_pad, h), min(right + tile_pad, w)
            y = net(x[..., y0:y1, x0:x1])
            scale = y.shape[-1] // (x1 - x0)
            if y.shape[-2:] != (scale * (y1 - y0), scale * (x1 - x0)):
                raise ValueError(f'tiles need an integer scale: {x1 - x0}x{y1 - y0} gave {y.shape[-1]}x{y.shape[-2]}')
            if out is None:
                out = y.new_empty(*x.shape[:-3], y.shape[-3], h * scale, w * scale)
            out[..., top * scale:bottom * scale, left * scale:right * scale] = \
                y[..., (top - y0) * scale:(bottom - y0) * scale, (left - x0) * scale:(right - x0) * scale]
    return out


def upscale_image(net, img, tile=0, tile_pad=TILE_PAD):
    """Upscale an image as OpenCV reads it (``cv2.IMREAD_UNCHANGED``), keeping its layout and bit depth.

    Colour (BGR) goes through the network as RGB in [0, 1]. A gray image goes through a 3-channel network
    as three equal channels, whose mean is the output. An alpha channel is upscaled with MATLAB-style
    bicubic interpolation, not the network.

    Args:
        net (nn.Module): Network (``load_network``) taking 1 or 3 channels.
        img (ndarray): uint8 or uint16 (h, w), (h, w, 3) BGR or (h, w, 4) BGRA image.
        tile, tile_pad (int): As ``upscale_tensor``.

    Returns:
        ndarray: The upscaled image, same dtype and channels.
    """
    if img.dtype not in (np.uint8, np.uint16):
        raise ValueError(f'{img.dtype} samples are not supported (8- or 16-bit images only)')
    channels = 1 if img.ndim == 2 else img.shape[2]
    if channels not in (1, 3, 4):
        raise ValueError(f'{channels}-channel images are not supported (gray, BGR or BGRA only)')
    net_channels = input_channels(net)
    if net_channels not in (1, 3) or (net_channels == 1 and channels != 1):
        raise ValueError(f'the network takes {net_channels}-channel input, the image has {channels} channel(s)')
    peak = np.iinfo(img.dtype).max
    pixels = img.astype(np.float32) / peak
    alpha = pixels[..., 3] if channels == 4 else None
    if channels == 1:
        rgb = np.repeat(pixels[..., None], net_channels, axis=2)
    else:
        rgb = pixels[..., 2::-1]  # BGR(A) -> RGB
    param = next(net.parameters())
    x = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None].to(param.device, param.dtype)
    out = upscale_tensor(net, x, tile, tile_pad)[0].float().cpu().numpy().transpose(1, 2, 0)
    if channels == 1:
        out = out.mean(axis=2)
    else:
        out = out[..., ::-1]  # RGB -> BGR
        if alpha is not None:
            out = np.concatenate([out, imresize(alpha, out.shape[0] / alpha.shape[0])[..., None]], axis=2)
    return (np.clip(out, 0, 1) * peak).round().astype(img.dtype)

