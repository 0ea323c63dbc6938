"""FastDeconv's function computed the way the reference implementation computes it, to time against.

The patch matrix is copied by ``unfold``, transposed and block-interleaved, then centred; the covariance
comes from ``addmm``; the inverse square root is the explicit Newton–Schulz iteration differentiated by
autograd (3 products per step, every iterate kept); the whitening is folded into the kernel on every call.
"""
import copy

import torch
from torch import nn
from torch.nn import functional as F

from deconv_basicsr.layers import FastDeconv
from deconv_basicsr.layers.isqrt import newton_schulz


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
        w = self.weight.view(-1, self.num_features, blocks).transpose(1, 2).contiguous().view(-1, self.num_features)
        w = w @ deconv
        b = self.bias - (w @ mean.unsqueeze(1)).view(self.out_channels, -1).sum(1)
        w = w.view(-1, blocks, self.num_features).transpose(1, 2).contiguous().view(self.weight.shape)
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
