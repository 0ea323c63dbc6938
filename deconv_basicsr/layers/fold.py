"""Folding: whitening followed by a convolution is one plain convolution.

A FastDeconv computes ``(X - mu) D W + b`` on its input patches ``X``; since ``D`` and ``mu`` are shared by
every patch, that is the convolution with kernel ``D W`` and bias ``b - mu D W``. ``fold_whitening`` computes
that kernel and bias from tensors alone: the layer folds with it at every step, and the fuser folds
checkpoints with it, without building a layer.
"""
import torch


class _Fold(torch.autograd.Function):
    """``(W, mean, D) -> (W D, W D mean)`` per group, with a backward that keeps no product of autograd's."""

    @staticmethod
    def forward(ctx, rows, mean, deconv):
        folded = rows @ deconv
        shift = (folded @ mean.unsqueeze(-1)).squeeze(-1)
        ctx.save_for_backward(rows, mean, deconv, folded)
        return folded, shift

    @staticmethod
    def backward(ctx, grad_folded, grad_shift):
        rows, mean, deconv, folded = ctx.saved_tensors
        grad_rows = grad_mean = grad_deconv = None
        total = grad_folded + grad_shift.unsqueeze(-1) * mean.unsqueeze(-2)  # shift = folded @ mean
        if ctx.needs_input_grad[0]:
            grad_rows = total @ deconv.transpose(-1, -2)
        if ctx.needs_input_grad[1]:
            grad_mean = (folded.transpose(-1, -2) @ grad_shift.unsqueeze(-1)).squeeze(-1)
        if ctx.needs_input_grad[2]:
            grad_deconv = rows.transpose(-1, -2) @ total
        return grad_rows, grad_mean, grad_deconv


def fold_whitening(weight, bias, mean, deconv):
    """Kernel and bias of the plain convolution equal to whitening with ``(mean, deconv)``, then convolving.

    The layout is FastDeconv's: with one set of statistics (``deconv`` of shape ``(1, d, d)``) each patch of
    ``C * kh * kw`` values holds ``G = C * kh * kw / d`` interleaved vectors (element ``f`` belongs to vector
    ``f % G``); with ``groups`` sets (``(groups, d, d)``, ``groups > 1``) group ``g`` of the convolution is
    whitened with set ``g``. Computed in ``deconv``'s dtype, differentiable in every argument.

    Args:
        weight (Tensor): Convolution kernel, (out_channels, in_channels / groups, kh, kw).
        bias (Tensor | None): Convolution bias, (out_channels, ); None for none (the mean correction still
            makes one).
        mean (Tensor): Patch means, (groups, d).
        deconv (Tensor): Whitening matrices, (groups, d, d).

    Returns:
        tuple[Tensor, Tensor]: The folded kernel (``weight``'s shape) and bias (out_channels, ).
    """
    groups, d = deconv.shape[0], deconv.shape[-1]
    out_channels = weight.shape[0]
    rows = weight.to(deconv.dtype)
    if groups == 1:
        # Rows (o, g): the kernel of output o over vector g; vectors are interleaved in the patch.
        blocks = weight[0].numel() // d
        rows = rows.reshape(out_channels, d, blocks).transpose(1, 2)
        folded, shift = _Fold.apply(rows.reshape(1, -1, d), mean, deconv)
        folded = folded.view(out_channels, blocks, d).transpose(1, 2)
        shift = shift.view(out_channels, blocks).sum(1)
    else:
        rows = rows.reshape(groups, out_channels // groups, d)
        folded, shift = _Fold.apply(rows, mean, deconv)
        shift = shift.reshape(out_channels)
    bias = -shift if bias is None else bias.to(shift.dtype) - shift
    return folded.reshape(weight.shape), bias
