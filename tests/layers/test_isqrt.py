"""Both inverse square root methods compute the reference's Newton–Schulz function and gradient, for
every iteration count from 1 to 20, on well- and ill-conditioned covariances, in float32 and float64."""
import pytest
import torch
from torch.nn import functional as F

from deconv_basicsr.layers import FastDeconv
from deconv_basicsr.layers.isqrt import METHODS, isqrt
from deconv_basicsr.experiments.reference_layer import newton_schulz_reference

CONDITIONS = [1e1, 1e3, 1e6, 1e9]


def _covariance(d, condition, repeated, seed=0):
    """Symmetric positive definite, eigenvalues log-spaced from 1 to 1 / condition; ``repeated``: the
    lower half of the spectrum at one value and the upper quarter at another."""
    g = torch.Generator().manual_seed(seed)
    basis, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    eigvals = torch.logspace(0, -torch.log10(torch.tensor(condition)).item(), d, dtype=torch.float64)
    if repeated:
        eigvals[:d // 2] = eigvals[0]
        eigvals[-d // 4:] = eigvals[-1]
    return (basis * eigvals) @ basis.T


def _relative_error(got, expected):
    return ((got.double() - expected).norm() / expected.norm()).item()


def _value_and_gradient(cov, n_iter, fn, grad_out):
    cov = cov.detach().requires_grad_()
    out = fn(cov, n_iter)
    grad, = torch.autograd.grad((out * grad_out.to(out.dtype)).sum(), cov)
    return out.detach(), grad


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('method', METHODS)
@pytest.mark.parametrize('d, iterations', [(27, range(1, 21)), (243, (1, 5, 6, 7, 10, 15, 20))])
def test_isqrt_equals_reference_for_every_iteration_count_and_condition(d, iterations, method, dtype):
    """Against the reference iteration in float64 on the same (dtype-rounded) covariance: float32 results
    to float32 precision (1e-4 relative), float64 ones to 1e-9."""
    tolerance = 1e-4 if dtype == torch.float32 else 1e-9
    grad_out = torch.randn(d, d, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    worst = {}
    for condition in CONDITIONS:
        for repeated in (False, True):
            cov = _covariance(d, condition, repeated).to(dtype)
            for n_iter in iterations:
                expected = _value_and_gradient(cov.double(), n_iter, newton_schulz_reference, grad_out)
                got = _value_and_gradient(cov, n_iter, lambda c, n: isqrt(c, n, method), grad_out)
                assert all(g.dtype == dtype for g in got)
                error = max(_relative_error(g, e) for g, e in zip(got, expected))
                key = (condition, repeated, n_iter)
                worst[key] = error
    bad = {key: f'{error:.1e}' for key, error in worst.items() if not error <= tolerance}
    assert not bad, bad


def _smooth_images(n=4, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return F.interpolate(torch.rand(n, 3, size // 4, size // 4, generator=g), size=(size, size), mode='bicubic',
                         align_corners=False)


@pytest.mark.parametrize('method', METHODS)
@pytest.mark.parametrize('n_iter', [5, 10, 15])
def test_float32_layer_gradients_match_float64_reference_at_many_iterations(method, n_iter):
    """A 3-channel input layer on smooth images (strongly correlated pixels, an ill-conditioned covariance):
    input and weight gradients in float32 within 1e-3 of the float64 reference iteration's."""
    x = _smooth_images()
    torch.manual_seed(1)
    reference = FastDeconv(3, 8, 3, padding=1, n_iter=n_iter, isqrt_method='newton_schulz').double()
    torch.manual_seed(1)
    layer = FastDeconv(3, 8, 3, padding=1, n_iter=n_iter, isqrt_method=method)
    x64 = x.double().requires_grad_()
    expected = torch.autograd.grad(reference(x64).square().sum(), [x64, reference.weight])
    x32 = x.clone().requires_grad_()
    got = torch.autograd.grad(layer(x32).square().sum(), [x32, layer.weight])
    for g, e in zip(got, expected):
        assert _relative_error(g, e) <= 1e-3
