"""Mean and covariance of sampled input patches, at the cost of one patch copy and two patch-sized products.

Autograd through ``unfold -> permute -> centre -> X X^T`` keeps several patch-sized copies alive until the
backward pass and spends two products on the covariance's gradient (one per factor). ``patch_moments``
gathers the patches once, centred on the way, and its backward

- uses one product for the covariance's gradient, ``dL/dX = (G + G^T) X / M``, and
- computes it from the layer input (which the convolution keeps anyway) instead of saving the patches: as a
  strided convolution followed by ``fold`` (the adjoint of the gather) when each group is one whitened
  block, or by gathering the patches again otherwise.
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

    def _source(self, x):
        """The sampled patch elements of ``x``: a view (C, kh, kw, N, Lh, Lw), or (C, M) for 1x1 kernels.

        In memory, that shape made contiguous already is (groups, d, M).
        """
        c = x.shape[1]
        if self.kernel_size == (1, 1):
            return x.transpose(0, 1).reshape(c, -1)[:, ::self.step[0] * self.step[1]]
        ph, pw = self.padding
        return self._windows(F.pad(x, (pw, pw, ph, ph)) if ph or pw else x).permute(1, 4, 5, 0, 2, 3)

    def gather(self, x, dtype=None):
        """A new (groups, d, M) tensor of ``dtype`` (default: ``x``'s) holding the sampled patches."""
        source = self._source(x)
        cols = torch.empty(source.shape, dtype=dtype or x.dtype, device=x.device).copy_(source)
        return cols.view(self.groups, self.num_features, -1)

    def gather_centred(self, x, dtype=None):
        """``(gather(x) - mean, mean)``, ``mean`` (groups, d, 1) being the mean over the M samples.

        The mean is read off the input in place and subtracted during the one copy.
        """
        dtype = dtype or x.dtype
        source = self._source(x)
        sample_dims = tuple(range(1 if source.dim() == 2 else 3, source.dim()))
        element_means = source.mean(sample_dims, dtype=dtype)  # (C, kh, kw): before stacking the blocks
        mean = element_means.view(self.groups, self.num_features, -1).mean(-1, keepdim=True)
        per_element = mean.expand(-1, -1, element_means.numel() // mean.numel()).reshape(element_means.shape)
        cols = torch.empty(source.shape, dtype=dtype, device=x.device)
        torch.sub(source, per_element.view(per_element.shape + (1, ) * len(sample_dims)), out=cols)
        return cols.view(self.groups, self.num_features, -1), mean

    def scatter(self, cols, x_shape):
        """The adjoint of ``gather``: a zero tensor of ``x_shape`` with every patch element added back in."""
        n, c, h, w = x_shape
        if self.kernel_size == (1, 1):
            grad = cols.new_zeros(c, n * h * w)
            grad[:, ::self.step[0] * self.step[1]] = cols.reshape(c, -1)
            return grad.view(c, n, h, w).transpose(0, 1)
        kh, kw = self.kernel_size
        patches = cols.view(c * kh * kw, n, -1).transpose(0, 1)  # (N, C*kh*kw, L), as unfold lays them out
        return F.fold(patches, (h, w), self.kernel_size, self.dilation, self.padding, self.step)

    def scatter_product(self, x, matrix, shift):
        """``scatter(matrix @ gather(x) + shift)``, for ``matrix`` (groups, d, d) and ``shift`` (groups, d, 1)."""
        n, c, h, w = x.shape
        kh, kw = self.kernel_size
        if (kh, kw) != (1, 1) and c * kh * kw == self.groups * self.num_features:
            # One block per group: the product over all sampled patches is a strided convolution with
            # ``matrix`` as its kernel, which needs no gathered copy and beats gather plus matmul.
            products = F.conv2d(x, matrix.reshape(-1, c // self.groups, kh, kw), shift.reshape(-1), self.step,
                                self.padding, self.dilation, self.groups)
            return F.fold(products.flatten(2), (h, w), self.kernel_size, self.dilation, self.padding, self.step)
        return self.scatter(torch.baddbmm(shift, matrix, self.gather(x)), x.shape)


def symmetric_gram(cols, block_rows=128):
    """``cols @ cols^T`` for ``cols`` (batch, d, M), computing only the block upper triangle.

    The product is symmetric, so for row blocks of ``block_rows`` each block row is multiplied only from its
    diagonal block on and mirrored: about ``(k + 1) / 2k`` of the multiply-adds of one product for ``k``
    blocks (0.625 for d = 576 in blocks of 144). Small ``d`` uses one product.
    """
    d = cols.shape[1]
    k = d // block_rows
    if k < 2:
        return torch.bmm(cols, cols.transpose(1, 2))
    bounds = [d * i // k for i in range(k + 1)]
    gram = cols.new_empty(cols.shape[0], d, d)
    for start, stop in zip(bounds, bounds[1:]):
        torch.bmm(cols[:, start:stop], cols[:, start:].transpose(1, 2), out=gram[:, start:stop, start:])
        gram[:, stop:, start:stop] = gram[:, start:stop, stop:].transpose(1, 2)
    return gram


class _PatchMoments(torch.autograd.Function):

    @staticmethod
    def forward(ctx, x, sampler, eps, dtype):
        cols, mean = sampler.gather_centred(x, dtype)
        cov = symmetric_gram(cols)
        cov.div_(cols.shape[-1]).diagonal(dim1=-2, dim2=-1).add_(eps)
        ctx.sampler, ctx.samples = sampler, cols.shape[-1]
        ctx.save_for_backward(x, mean)
        return mean.squeeze(-1), cov

    @staticmethod
    def backward(ctx, grad_mean, grad_cov):
        x, mean = ctx.saved_tensors
        # With X the patches and Xc = X - mean, dL/dX = S Xc + grad_mean / M for S = (G + G^T) / M (centring
        # adds nothing: the columns of S Xc sum to zero), i.e. S X plus a shift per row.
        matrix = (grad_cov + grad_cov.transpose(1, 2)).div_(ctx.samples)
        shift = grad_mean.unsqueeze(-1) / ctx.samples - matrix @ mean
        return ctx.sampler.scatter_product(x.to(mean.dtype), matrix, shift).to(x.dtype), None, None, None


def patch_moments(x, sampler, eps, dtype=None):
    """Mean (groups, d) and covariance plus ``eps I`` (groups, d, d) of the sampled patches of ``x``.

    Args:
        x (Tensor): Input, (N, C, H, W).
        sampler (PatchSampler): Which patches, and how they are arranged.
        eps (float): Added to the covariance diagonal.
        dtype (torch.dtype, optional): Precision of the statistics. Default: ``x``'s.
    """
    return _PatchMoments.apply(x, sampler, eps, dtype or x.dtype)


def shrink_covariance(cov, shrinkage):
    """``(1 - shrinkage) cov + shrinkage * tr(cov) / d * I`` for covariances (..., d, d): shrunk toward the
    scaled identity of the same trace (Ledoit–Wolf's target), which bounds the condition number by
    ``1 + (1 - shrinkage) / shrinkage * d`` whatever the samples."""
    d = cov.shape[-1]
    scale = shrinkage * cov.diagonal(dim1=-2, dim2=-1).sum(-1) / d
    eye = torch.eye(d, dtype=cov.dtype, device=cov.device)
    return (1 - shrinkage) * cov + scale[..., None, None] * eye
