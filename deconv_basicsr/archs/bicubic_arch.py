import torch
from torch import nn

from basicsr.utils.registry import ARCH_REGISTRY

from deconv_basicsr.imresize import resize_matrix


@ARCH_REGISTRY.register()
class Bicubic(nn.Module):
    """Parameter-free MATLAB-compatible bicubic upsampling, the baseline row of the results table.

    Runs ``imresize(lr, upscale, 'bicubic')`` as MATLAB does, so the bicubic baseline comes out of the
    same BasicSR test pipeline (datasets, metrics, logs) as the trained networks. Inputs are images in
    [0, 1]. PyTorch's ``interpolate(mode='bicubic')`` uses a different kernel (a = -0.75) and border
    handling, and falls about 0.1-0.3 dB short of the published bicubic numbers.

    Args:
        upscale (int): Upsampling factor. Default: 4.
        quantize (bool): Round the result of the vertical pass to 8-bit levels before the horizontal
            pass, as MATLAB does for ``uint8`` images (the benchmark LR images are 8-bit). Default: True.
    """

    def __init__(self, upscale=4, quantize=True):
        super().__init__()
        self.upscale = upscale
        self.quantize = quantize
        self._matrices = {}

    def _resize_matrices(self, h, w, device):
        """float64 resampling matrices for an h x w input, cached per size and device."""
        key = (h, w, str(device))
        if key not in self._matrices:
            self._matrices[key] = tuple(
                torch.from_numpy(resize_matrix(n, n * self.upscale, self.upscale)).to(device) for n in (h, w))
        return self._matrices[key]

    def forward(self, x):
        m_h, m_w = self._resize_matrices(x.shape[-2], x.shape[-1], x.device)
        out = torch.matmul(m_h, x.double())
        if self.quantize:
            out = (out * 255).round().clamp(0, 255) / 255
        out = torch.matmul(out, m_w.t())
        return out.to(x.dtype)
