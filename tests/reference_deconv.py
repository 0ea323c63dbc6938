"""An independent, deliberately plain statement of network deconvolution, used as the tests' oracle.

It follows the description in Ye et al. (ICLR 2020) literally: sample patches on a strided grid, stack the
``C / B`` channel blocks of each patch as extra samples (interleaved membership: flattened element ``f``
belongs to block ``f % G``), centre, covariance plus ``eps I``, coupled Newton–Schulz, and then whiten
*every* patch explicitly and multiply by the kernel (no folding). One group; grouped convs are checked
group by group.
"""
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.modules.utils import _pair


def newton_schulz_reference(cov, n_iter):
    norm = cov.norm()
    y = cov / norm
    eye = torch.eye(cov.shape[0], dtype=cov.dtype)
    z = eye
    for _ in range(n_iter):
        t = 0.5 * (3 * eye - z @ y)
        y = y @ t
        z = t @ z
    return z / norm.sqrt()


def patch_statistics(x, kernel_size, padding, block, eps=1e-5, n_iter=5, sampling_stride=3, stride=1,
                     dilation=1):
    n, c = x.shape[:2]
    kh, kw = _pair(kernel_size)
    sh, sw = _pair(stride)
    d = kh * kw * block
    if (kh, kw) == (1, 1):
        rows = x.permute(0, 2, 3, 1).reshape(-1, c)[::sampling_stride**2 * sh * sw]
    else:
        step = (sampling_stride * sh, sampling_stride * sw)
        rows = F.unfold(x, (kh, kw), dilation, padding, step).transpose(1, 2).reshape(-1, c * kh * kw)
    rows = rows.reshape(-1, d, c // block).transpose(1, 2).reshape(-1, d)
    mean = rows.mean(0)
    centred = rows - mean
    cov = centred.T @ centred / rows.shape[0] + eps * torch.eye(d, dtype=x.dtype)
    return mean, newton_schulz_reference(cov, n_iter)


def whitened_conv(x, weight, bias, mean, deconv, stride=1, padding=0, dilation=1):
    """Whiten every patch with (mean, deconv), then apply the kernel as a matrix product."""
    n, c, h, w = x.shape
    out_channels, _, kh, kw = weight.shape
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    d = deconv.shape[0]
    blocks = c * kh * kw // d
    patches = F.unfold(x, (kh, kw), (dh, dw), (ph, pw), (sh, sw)).transpose(1, 2)  # (N, L, C*kh*kw)
    patches = patches.reshape(n, -1, d, blocks).transpose(2, 3)  # (N, L, G, d)
    white = (patches - mean) @ deconv
    white = white.transpose(2, 3).reshape(n, -1, c * kh * kw)
    out = white @ weight.reshape(out_channels, -1).T
    if bias is not None:
        out = out + bias
    out_h = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    out_w = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    return out.transpose(1, 2).reshape(n, out_channels, out_h, out_w)


class ReferenceLayer(nn.Module):
    """The reference layer's parameters and buffers, by name and shape, for ``groups == 1``: ``weight``,
    ``bias``, ``running_mean`` (d,) and ``running_deconv`` (d, d), no step counter. Training steps update the
    moving averages (momentum 0.1, from 0 and I) with ``patch_statistics``; eval whitens every patch
    explicitly with them."""

    def __init__(self, in_channels, out_channels, kernel_size, padding, block, n_iter=5, momentum=0.1):
        super().__init__()
        self.kernel_size, self.padding, self.block, self.n_iter = kernel_size, padding, block, n_iter
        self.momentum = momentum
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size) * 0.1)
        self.bias = nn.Parameter(torch.randn(out_channels) * 0.1)
        d = kernel_size * kernel_size * block
        self.register_buffer('running_mean', torch.zeros(d))
        self.register_buffer('running_deconv', torch.eye(d))

    def forward(self, x):
        if self.training:
            mean, deconv = patch_statistics(x, self.kernel_size, self.padding, self.block, n_iter=self.n_iter)
            with torch.no_grad():
                self.running_mean.lerp_(mean, self.momentum)
                self.running_deconv.lerp_(deconv, self.momentum)
        else:
            mean, deconv = self.running_mean, self.running_deconv
        return whitened_conv(x, self.weight, self.bias, mean, deconv, padding=self.padding)
