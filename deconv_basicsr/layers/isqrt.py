"""Inverse square root of covariance matrices by coupled Newton–Schulz iteration.

Network deconvolution whitens with ``D = NS_n(Cov)``: ``n`` steps of the coupled Newton–Schulz iteration on
``A = Cov / ||Cov||_F``, scaled back by ``1 / sqrt(||Cov||_F)``. With few steps this is a *partial* whitening
(directions whose eigenvalue is far below ``||Cov||_F`` are only partly equalised), which is part of the
method, so every evaluation here computes that same function, not the exact inverse square root.

Two evaluations of the same function are provided:

- ``newton_schulz``: the reference iteration, ``3 n`` matrix products, differentiated by autograd.
- ``spectral``: every iterate is a polynomial in ``A``, so ``NS_n(A) = V diag(z_n(lambda)) V^T`` for
  ``A = V diag(lambda) V^T``, where ``z_n`` is the scalar recursion ``z <- z (3 - z^2 lambda) / 2`` from
  ``z = 1``. One ``eigh`` replaces the matrix products; the backward pass uses the closed form of the
  derivative of a matrix function (divided differences of ``z_n``, computed by the same recursion, so
  coinciding eigenvalues need no special case).
"""
import torch
from torch.utils.checkpoint import checkpoint

METHODS = ('newton_schulz', 'spectral')


def newton_schulz(cov, n_iter):
    """Reference coupled Newton–Schulz iteration.

    Args:
        cov (Tensor): Covariance matrices, shape (..., d, d), symmetric positive definite.
        n_iter (int): Number of iterations.

    Returns:
        Tensor: ``NS_n(cov)`` of the same shape.
    """
    norm = torch.linalg.matrix_norm(cov, keepdim=True)
    y = cov / norm
    eye = torch.eye(cov.shape[-1], dtype=cov.dtype, device=cov.device).expand_as(cov)
    z = eye
    for _ in range(n_iter):
        t = 0.5 * (3.0 * eye - z @ y)
        y = y @ t
        z = t @ z
    return z / norm.sqrt()


def _scalar_newton_schulz(eigvals, n_iter):
    """``z_n`` at every eigenvalue: the scalar recursion ``z <- z (3 - z^2 lambda) / 2`` from ``z = 1``."""
    z = torch.ones_like(eigvals)
    for _ in range(n_iter):
        z = 0.5 * z * (3.0 - z * z * eigvals)
    return z


def _divided_differences(eigvals, n_iter):
    """``K_ij = (z_n(l_i) - z_n(l_j)) / (l_i - l_j)``, and ``z_n'(l_i)`` where ``l_i = l_j``.

    ``eigvals`` must be in ascending order (as ``eigh`` returns them). ``z <- 1.5 z - 0.5 l z^3``; the
    divided difference of ``l z^3`` between a and b is ``a (z_a^2 + z_a z_b + z_b^2) dz + z_b^3``, exact, and
    the derivative when a = b. So ``dz <- c dz - 0.5 z_b^3`` with ``c = 1.5 - 0.5 a (z_a^2 + z_a z_b + z_b^2)``.

    Which end is ``a`` matters for rounding. With ``a`` the smaller eigenvalue, ``a z^2 <= 1`` for both ends
    (``z_n`` decreases in ``l``, and ``l z_n(l)^2 <= 1`` on [0, 1]), so ``0 <= c <= 1.5``: rounding errors
    grow no faster than the values. The other way round ``|c|`` reaches ``l_max / l_min``, and the errors
    grow by that factor at every step (float32 gradients off by 1e14 at ``n = 15``). So the recursion runs
    with ``a = l_j``, ``b = l_i``, which is that order for ``i >= j``, and only the lower triangle is kept.
    ``c`` is then the rank-3 update ``1.5 - 0.5 Q P^T`` (``Q = [1, z, z^2]`` over rows,
    ``P = [l z^2, l z, l]`` over columns): two passes over the d x d matrix per step.
    """
    z = torch.ones_like(eigvals)
    dz = torch.zeros(eigvals.shape + eigvals.shape[-1:], dtype=eigvals.dtype, device=eigvals.device)
    for _ in range(n_iter):
        p = torch.stack((eigvals * z * z, eigvals * z, eigvals), -1) * -0.5
        q = torch.stack((torch.ones_like(z), z, z * z), -1)
        c = torch.matmul(q, p.transpose(-1, -2)).add_(1.5)
        dz = torch.addcmul((-0.5 * z**3).unsqueeze(-1), dz, c)
        z = 0.5 * z * (3.0 - z * z * eigvals)
    # The upper triangle ran the unstable order (it may hold inf or NaN): mirror the lower one.
    lower = dz.tril()
    return lower + lower.tril(-1).transpose(-1, -2)


class _SpectralNewtonSchulz(torch.autograd.Function):
    """``cov -> NS_n(cov)``, normalisation included, through one eigendecomposition.

    Only the eigenvectors, eigenvalues and norm are kept for the backward pass (autograd through the
    normalisation would keep three more d x d matrices per layer).
    """

    @staticmethod
    def forward(ctx, cov, n_iter):
        norm = torch.linalg.matrix_norm(cov, keepdim=True)
        eigvals, eigvecs = torch.linalg.eigh(cov / norm)
        z = _scalar_newton_schulz(eigvals, n_iter) / norm.squeeze(-1).sqrt()
        scaled = eigvecs * z.unsqueeze(-2)
        ctx.save_for_backward(eigvals, eigvecs, norm)
        ctx.n_iter = n_iter
        return scaled @ eigvecs.transpose(-1, -2)

    @staticmethod
    def backward(ctx, grad):
        # D = f(A) / sqrt(s) with A = cov / s, s = ||cov||_F, f(A) = V diag(z_n(lambda)) V^T. With
        # M = V^T grad V / sqrt(s): dL/dA = V (K o M) V^T (K: divided differences of z_n), and through s,
        # dL/dcov = (dL/dA - A (<dL/dA, A> + <grad, D> / 2)) / s
        #         = V (K o M - diag(lambda) sum_i (lambda_i K_ii + z_i / 2) M_ii) V^T / s.
        eigvals, eigvecs, norm = ctx.saved_tensors
        inner = eigvecs.transpose(-1, -2) @ grad @ eigvecs
        # The d x d divided differences are built here, not in forward, so they are not held in between.
        divided = _divided_differences(eigvals, ctx.n_iter)
        z = _scalar_newton_schulz(eigvals, ctx.n_iter)
        weights = (eigvals * divided.diagonal(dim1=-2, dim2=-1) + 0.5 * z) / norm.squeeze(-1).sqrt()
        through_norm = (weights * inner.diagonal(dim1=-2, dim2=-1)).sum(-1, keepdim=True)
        inner = divided.mul_(inner).div_(norm * norm.sqrt())
        inner.diagonal(dim1=-2, dim2=-1).sub_(eigvals * through_norm / norm.squeeze(-1))
        return eigvecs @ inner @ eigvecs.transpose(-1, -2), None


def spectral(cov, n_iter):
    """Same function and gradient as ``newton_schulz``, evaluated through one eigendecomposition.

    Args:
        cov (Tensor): Covariance matrices, shape (..., d, d), symmetric positive definite.
        n_iter (int): Number of Newton–Schulz iterations being evaluated.

    Returns:
        Tensor: ``NS_n(cov)`` of the same shape.
    """
    return _SpectralNewtonSchulz.apply(cov, n_iter)


# Float32 rounding moves the small eigenvalues of A by about 1e-7, and z_n magnifies that by up to
# (9/4)^n where it has not yet converged: 1e-5 of D at n = 6, 1e-3 at n = 15 (measured, both methods; with
# condition numbers of 1e6 and more, 5e-2 at n = 20). Beyond this many steps float32 covariances are
# inverted in float64, so D is the function of the float32 covariance to float32 precision.
FLOAT32_MAX_ITERS = 6


def work_dtype(dtype, n_iter):
    """The dtype ``isqrt`` computes in for covariances of ``dtype``."""
    return torch.float64 if dtype == torch.float32 and n_iter > FLOAT32_MAX_ITERS else dtype


def isqrt(cov, n_iter, method):
    """``NS_n(cov)`` by ``newton_schulz`` or ``spectral``, in ``work_dtype`` (returned in ``cov``'s dtype).

    ``newton_schulz`` is checkpointed when differentiated: autograd would keep its ``3 n`` d x d iterates per
    layer until the backward pass (15 for the default 5 steps), which is recomputed there instead.
    """
    if method not in METHODS:
        raise ValueError(f'isqrt method must be one of {METHODS}, got {method!r}')
    dtype = cov.dtype
    cov = cov.to(work_dtype(dtype, n_iter))
    if method == 'spectral':
        out = spectral(cov, n_iter)
    elif torch.is_grad_enabled() and cov.requires_grad:
        out = checkpoint(newton_schulz, cov, n_iter, use_reentrant=False)
    else:
        out = newton_schulz(cov, n_iter)
    return out.to(dtype)
