"""The reference layer: network deconvolution stated plainly, independently of FastDeconv's computation.

* ``ReferenceLayer`` (with ``patch_statistics``, ``whitened_conv``, ``newton_schulz_reference``): the tests'
  oracle. It follows Ye et al. (ICLR 2020) literally: sample patches on a strided grid, stack the ``C / B``
  channel blocks of each patch as extra samples (interleaved membership: flattened element ``f`` belongs to
  block ``f % G``), centre, covariance plus ``eps I``, coupled Newton–Schulz, and then whiten *every* patch
  explicitly and multiply by the kernel (no folding). One group; grouped convs are checked group by group.
* ``ReferenceDeconv``: a copy of a FastDeconv layer computed the way the reference implementation computes
  it, to time against: the patch matrix is copied by ``unfold``, transposed and block-interleaved, then
  centred; the covariance comes from ``addmm``; the inverse square root is the explicit Newton–Schulz
  iteration differentiated by autograd (3 products per step, every iterate kept); the whitening is folded
  into the kernel on every call (``fold_whitening``, the layer's own fold).
"""
import copy

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.modules.utils import _pair

from deconv_basicsr.layers import FastDeconv
from deconv_basicsr.layers.fold import fold_whitening
from deconv_basicsr.layers.isqrt import newton_schulz


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


class ReferenceDeconv(nn.Conv2d):
    """A copy of a FastDeconv layer (``groups == 1``), computed as the reference computes it."""

    def __init__(self, layer):
        super().__init__(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.padding,
                         layer.dilation, 1, True, device=layer.weight.device, dtype=layer.weight.dtype)
        with torch.no_grad():
            self.weight.copy_(layer.weight)
            self.bias.copy_(layer.bias)
        self.block, self.num_features = layer.block, layer.num_features
        self.eps, self.n_iter, self.momentum = layer.eps, layer.n_iter, layer.momentum
        self.sampling_step = layer.sampling_stride * layer.stride[0]
        self.register_buffer('running_mean', layer.running_mean[0].clone())
        self.register_buffer('running_deconv', layer.running_deconv[0].clone())

    def forward(self, x):
        blocks = x.shape[1] // self.block
        if self.training:
            cols = F.unfold(x, self.kernel_size, self.dilation, self.padding, self.sampling_step)
            cols = cols.transpose(1, 2).contiguous()
            cols = cols.view(-1, self.num_features, blocks).transpose(1, 2).contiguous().view(-1, self.num_features)
            mean = cols.mean(0)
            cols = cols - mean.unsqueeze(0)
            eye = torch.eye(self.num_features, dtype=x.dtype, device=x.device)
            cov = torch.addmm(eye, cols.t(), cols, beta=self.eps, alpha=1.0 / cols.shape[0])
            deconv = newton_schulz(cov, self.n_iter)
            with torch.no_grad():
                self.running_mean.mul_(1 - self.momentum).add_(mean.detach() * self.momentum)
                self.running_deconv.mul_(1 - self.momentum).add_(deconv.detach() * self.momentum)
        else:
            mean, deconv = self.running_mean, self.running_deconv
        w, b = fold_whitening(self.weight, self.bias, mean.unsqueeze(0), deconv.unsqueeze(0))
        return F.conv2d(x, w, b, self.stride, self.padding, self.dilation)


def to_reference(model):
    """A copy of ``model`` with every FastDeconv replaced by its ReferenceDeconv."""
    model = copy.deepcopy(model)
    for name, module in list(model.named_modules()):
        if isinstance(module, FastDeconv):
            model.set_submodule(name, ReferenceDeconv(module))
    return model


def check_reference(device):
    """Raise unless ReferenceDeconv computes FastDeconv's training output on ``device``: a timing of the
    reference is only worth something if it computes the same function."""
    torch.manual_seed(0)
    layer = FastDeconv(16, 8, 3, padding=1, block=8).double().to(device)
    x = torch.randn(2, 16, 13, 13, dtype=torch.float64, device=device) * 3 + 1
    torch.testing.assert_close(ReferenceDeconv(layer)(x), layer(x))
