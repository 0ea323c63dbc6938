"""Patch moments synchronised across processes (``FastDeconv(sync_stats=True)``).

The role SyncBatchNorm plays for BatchNorm: with data-parallel training each process sees part of the batch,
and its own statistics would whiten with a smaller, noisier sample. ``synced_patch_moments`` all-reduces the
sample count, the mean and the centred second moments, so every process gets the mean and covariance of the
patches of the whole (global) batch. The reductions are differentiable: in the backward pass the gradients
with respect to the shared statistics are summed over the processes, so that, with every process's
parameter gradients summed (or averaged, as DistributedDataParallel does, with a loss averaged the same way),
training matches one process on the whole batch.

Sampling is per image for ``k x k`` kernels (a fixed grid on every image), so halves of a batch sample the
same patches as the whole batch. A ``1 x 1`` kernel samples every ``step``-th position of the flattened
``(N, H, W)`` positions instead; the samples of a split batch equal those of the whole batch only when the
per-process ``N * H * W`` is a multiple of ``step = (sampling_stride * stride) ** 2``, otherwise they are as
many positions, shifted.
"""
import torch
from torch import distributed as dist

from deconv_basicsr.layers.moments import patch_moments


class _AllReduceSum(torch.autograd.Function):
    """Sum over the processes of ``group``; its gradient is the sum of the processes' gradients."""

    @staticmethod
    def forward(ctx, tensor, group):
        ctx.group = group
        tensor = tensor.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(tensor, group=group)
        return tensor

    @staticmethod
    def backward(ctx, grad):
        grad = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(grad, group=ctx.group)
        return grad, None


def all_reduce_sum(tensor, group=None):
    """Differentiable ``all_reduce`` (sum) of ``tensor`` over ``group`` (default: every process)."""
    return _AllReduceSum.apply(tensor, group)


def sync_active(group=None):
    """Whether statistics are to be synchronised: torch.distributed is initialised with more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size(group) > 1


def sample_count(x, sampler):
    """Number of sampled patches (columns of ``sampler.gather(x)``), from the shape alone."""
    return sampler.gather(torch.empty(x.shape, device='meta')).shape[-1]


def synced_patch_moments(x, sampler, eps, dtype=None, group=None):
    """Mean (groups, d) and covariance plus ``eps I`` (groups, d, d) of the patches of every process's ``x``.

    Like ``patch_moments`` on the concatenation of the inputs of all processes of ``group`` (which may differ
    in batch size), computed from each process's count, mean and centred second moments:
    ``mean = sum(M_r mean_r) / M`` and ``cov = sum(M_r (cov_r + (mean_r - mean)(mean_r - mean)^T)) / M``.
    Two all-reduces, both differentiable. Every process of ``group`` must call it, in the same order.

    Args:
        x (Tensor): This process's input, (N, C, H, W).
        sampler (PatchSampler): Which patches, and how they are arranged.
        eps (float): Added to the covariance diagonal.
        dtype (torch.dtype, optional): Precision of the statistics. Default: ``x``'s.
        group (ProcessGroup, optional): Processes to synchronise. Default: every process.
    """
    mean, cov = patch_moments(x, sampler, 0.0, dtype)
    count = torch.tensor([float(sample_count(x, sampler))], dtype=mean.dtype, device=mean.device)
    totals = all_reduce_sum(torch.cat([count, (mean * count).flatten()]), group)
    total_count = totals[0]
    global_mean = totals[1:].view_as(mean) / total_count
    shift = mean - global_mean
    # Centred about the global mean: this process's covariance plus the spread of its mean.
    second = count * (cov + shift.unsqueeze(-1) * shift.unsqueeze(-2))
    global_cov = all_reduce_sum(second, group) / total_count
    eye = torch.eye(global_cov.shape[-1], dtype=global_cov.dtype, device=global_cov.device)
    return global_mean, global_cov + eps * eye
