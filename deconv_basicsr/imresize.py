"""MATLAB-compatible bicubic ``imresize``.

This is the same kernel, antialiasing and symmetric border handling as MATLAB's ``imresize(img, scale,
'bicubic')`` and BasicSR's port (``basicsr.utils.matlab_functions.imresize``), but vectorised over taps
(BasicSR's port loops over rows in Python: seconds per DIV2K image), computed in float64, and also
available as dense matrices ``out = M_h @ img @ M_w^T`` for batched tensors on any device (the ``Bicubic``
arch).

Like MATLAB, a ``uint8`` image is resized as ``uint8``: the result of the first (vertical) pass is rounded
to integers before the second pass, and the output is rounded and clipped. This reproduces the published
bicubic PSNRs slightly more closely than resizing in float throughout.
"""
import math

import numpy as np

__all__ = ['resize_taps', 'resize_matrix', 'imresize', 'bicubic_downscale']


def _cubic(x):
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``)."""
    ax = np.abs(x)
    ax2, ax3 = ax**2, ax**3
    return ((1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) &
                                                                                                 (ax <= 2)))


def resize_taps(in_length, out_length, scale, antialiasing=True):
    """Input indices and weights of MATLAB's bicubic ``imresize`` along one axis.

    Port of MATLAB's ``contributions``: the output sample ``i`` (1-based) sits at input coordinate
    ``u = i / scale + 0.5 * (1 - 1 / scale)``; when downscaling with antialiasing the kernel is stretched by
    ``1 / scale``. Taps outside the signal are mirrored (``[1:n, n:-1:1]``).

    Args:
        in_length (int): Number of input samples.
        out_length (int): Number of output samples.
        scale (float): Scale factor (``< 1`` downscales).
        antialiasing (bool): Stretch the kernel when downscaling, as MATLAB does. Default: True.

    Returns:
        tuple[ndarray, ndarray]: int64 indices and float64 weights, both (out_length, taps); each row of
        weights sums to 1.
    """
    kernel_width = 4.0
    if scale < 1 and antialiasing:
        kernel_width /= scale

        def kernel(x):
            return scale * _cubic(scale * x)
    else:
        kernel = _cubic
    x = np.arange(1, out_length + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - kernel_width / 2)
    taps = int(math.ceil(kernel_width)) + 2
    indices = left[:, None] + np.arange(taps)[None, :]
    weights = kernel(u[:, None] - indices)
    weights /= weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_length), np.arange(in_length)[::-1]])
    indices = mirror[np.mod(indices.astype(np.int64) - 1, 2 * in_length)]
    return indices, weights


def resize_matrix(in_length, out_length, scale, antialiasing=True):
    """Dense (out_length, in_length) float64 matrix of ``resize_taps``; mirrored taps add up."""
    indices, weights = resize_taps(in_length, out_length, scale, antialiasing)
    matrix = np.zeros((out_length, in_length))
    np.add.at(matrix, (np.repeat(np.arange(out_length), indices.shape[1]), indices.ravel()), weights.ravel())
    return matrix


def _resize_axis0(x, out_length, scale, antialiasing):
    """Resample ``x`` along its first axis, one tap at a time (the taps are few, the matrix is sparse)."""
    indices, weights = resize_taps(x.shape[0], out_length, scale, antialiasing)
    out = np.zeros((out_length, ) + x.shape[1:])
    for k in range(indices.shape[1]):
        out += weights[:, k, None, None] * x[indices[:, k]]
    return out


def imresize(img, scale, antialiasing=True):
    """Resize an image like MATLAB's ``imresize(img, scale, 'bicubic')``.

    Args:
        img (ndarray): (h, w) or (h, w, c) image. ``uint8`` images are resized with MATLAB's ``uint8``
            semantics (integer intermediate and output); any other dtype is resized in float64 and
            returned unrounded.
        scale (float): Scale factor, the same for height and width. The output size is
            ``ceil(h * scale) x ceil(w * scale)``.
        antialiasing (bool): Antialias when downscaling. Default: True.

    Returns:
        ndarray: Resized image, ``uint8`` for ``uint8`` input, else float64.
    """
    is_uint8 = img.dtype == np.uint8
    h, w = img.shape[:2]
    out_h, out_w = math.ceil(h * scale), math.ceil(w * scale)
    x = img.astype(np.float64)
    squeeze = x.ndim == 2
    if squeeze:
        x = x[:, :, None]
    # MATLAB resizes along the height first when both scales are equal.
    x = _resize_axis0(x, out_h, scale, antialiasing)
    if is_uint8:
        x = np.clip(np.round(x), 0, 255)
    x = _resize_axis0(x.transpose(1, 0, 2), out_w, scale, antialiasing).transpose(1, 0, 2)
    if squeeze:
        x = x[:, :, 0]
    if is_uint8:
        x = np.clip(np.round(x), 0, 255).astype(np.uint8)
    return x


def bicubic_downscale(img, scale):
    """Bicubic LR image of a ``uint8`` HR image whose sides are multiples of ``scale``.

    Args:
        img (ndarray): uint8 (h, w[, c]) image with ``h`` and ``w`` divisible by ``scale``.
        scale (int): Integer downscaling factor.

    Returns:
        ndarray: uint8 image of size (h / scale, w / scale).
    """
    h, w = img.shape[:2]
    if h % scale or w % scale:
        raise ValueError(f'Image size {w}x{h} is not a multiple of the scale {scale}; mod-crop it first.')
    return imresize(img, 1 / scale)
