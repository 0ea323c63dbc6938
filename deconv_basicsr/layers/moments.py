"""Mean and covariance of sampled input patches, at the cost of one patch copy and two patch-sized products.

Autograd through ``unfold -> permute -> centre -> X X^T`` keeps several patch-sized copies alive until the
backward pass and spends two products on the covariance's gradient (one per factor). ``patch_moments``
gathers the patches once, centres them in place, and its backward

- recomputes the patches from the layer input (which the convolution keeps anyway) instead of saving them,
- uses one product for the covariance's gradient, ``dL/dX = (G + G^T) X / M``, and
- scatters the patch gradient back onto the input directly (the adjoint of the gather).
"""
import torch
from torch.nn import functional as F


class PatchSampler:
    """Gathers the sampled patches of a convolution's input into a (groups, d, M) matrix, and back.

    Patches are taken on a grid of step ``step`` (``sampling_stride * stride``) with the convolution's
    kernel, dilation and zero padding; a 1x1 kernel samples every ``step_h * step_w``-th position of the
    flattened (N, H, W) positions instead. Element ``f`` of a flattened patch (channel-major, as ``unfold``
    orders it) goes to row ``f // G``, and samples of the ``G`` blocks that share one covariance are stacked
    along the columns (``G = elements / d``), so block membership is interleaved (``f % G``).
    """

    def __init__(self, kernel_size, dilation, padding, step, groups, num_features):
        self.kernel_size, self.dilation, self.padding, self.step = kernel_size, dilation, padding, step
        self.groups, self.num_features = groups, num_features

    def _windows(self, padded):
        """The sampled windows of a padded input as a view, (N, C, Lh, Lw, kh, kw)."""
        (kh, kw), (dh, dw), (sh, sw) = self.kernel_size, self.dilation, self.step
        windows = padded.unfold(2, dh * (kh - 1) + 1, sh).unfold(3, dw * (kw - 1) + 1, sw)
        return windows[..., ::dh, ::dw]

    def gather(self, x, dtype=None):
        """A new (groups, d, M) tensor of ``dtype`` (default: ``x``'s) holding the sampled patches."""
        n, c = x.shape[:2]
        if self.kernel_size == (1, 1):
            source = x.transpose(0, 1).reshape(c, -1)[:, ::self.step[0] * self.step[1]]  # (C, M)
        else:
            ph, pw = self.padding
            windows = self._windows(F.pad(x, (pw, pw, ph, ph)) if ph or pw else x)
            source = windows.permute(1, 4, 5, 0, 2, 3)  # (C, kh, kw, N, Lh, Lw)
        # The one copy; in memory, (C, kh, kw, N, Lh, Lw) already is (groups, d, M).
        cols = torch.empty(source.shape, dtype=dtype or x.dtype, device=x.device).copy_(source)
        return cols.view(self.groups, self.num_features, -1)

    def scatter(self, cols, x_shape):
        """The adjoint of ``gather``: a zero tensor of ``x_shape`` with every patch element added back in."""
        n, c, h, w = x_shape
        if self.kernel_size == (1, 1):
            grad = cols.new_zeros(c, n * h * w)
            grad[:, ::self.step[0] * self.step[1]] = cols.reshape(c, -1)
            return grad.view(c, n, h, w).transpose(0, 1)
        (ph, pw), (kh, kw), (dh, dw), (sh, sw) = self.padding, self.kernel_size, self.dilation, self.step
        grad = cols.new_zeros(n, c, h + 2 * ph, w + 2 * pw)
        windows = self._windows(grad)
        lh, lw = windows.shape[2:4]
        patches = cols.view(c, kh, kw, n, lh, lw).permute(3, 0, 4, 5, 1, 2)
        # Windows overlap when the step is smaller than the kernel: add one kernel offset at a time, each a
        # strided slice whose elements are distinct.
        for i in range(kh):
            for j in range(kw):
                windows[..., i, j].add_(patches[..., i, j])
        return grad[:, :, ph:ph + h, pw:pw + w]


class _PatchMoments(torch.autograd.Function):

    @staticmethod
    def forward(ctx, x, sampler, eps, dtype):
        cols = sampler.gather(x, dtype)
        mean = cols.mean(-1, keepdim=True)
        cols.sub_(mean)
        eye = torch.eye(cols.shape[1], dtype=cols.dtype, device=cols.device)
        cov = torch.baddbmm(eye * eps, cols, cols.transpose(1, 2), alpha=1.0 / cols.shape[-1])
        ctx.sampler = sampler
        ctx.save_for_backward(x, mean)
        return mean.squeeze(-1), cov

    @staticmethod
    def backward(ctx, grad_mean, grad_cov):
        x, mean = ctx.saved_tensors
        cols = ctx.sampler.gather(x, mean.dtype).sub_(mean)
        samples = cols.shape[-1]
        # d mean / d X = 1/M; d cov / d X applied to G is (G + G^T) X / M for centred X (whose columns sum to
        # zero, so centring adds nothing to the gradient).
        grad_cols = torch.baddbmm(grad_mean.unsqueeze(-1) / samples,
                                  grad_cov + grad_cov.transpose(1, 2),
                                  cols,
                                  alpha=1.0 / samples)
        return ctx.sampler.scatter(grad_cols, x.shape).to(x.dtype), None, None, None


def patch_moments(x, sampler, eps, dtype=None):
    """Mean (groups, d) and covariance plus ``eps I`` (groups, d, d) of the sampled patches of ``x``.

    Args:
        x (Tensor): Input, (N, C, H, W).
        sampler (PatchSampler): Which patches, and how they are arranged.
        eps (float): Added to the covariance diagonal.
        dtype (torch.dtype, optional): Precision of the statistics. Default: ``x``'s.
    """
    return _PatchMoments.apply(x, sampler, eps, dtype or x.dtype)
