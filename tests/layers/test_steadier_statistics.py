"""Steadier training statistics: pooling several batches (``stats_batches``) and shrinkage (``shrinkage``)."""
import copy

import pytest
import torch
from helpers import correlated_input

from deconv_basicsr.layers import FastDeconv
from deconv_basicsr.layers.isqrt import isqrt
from deconv_basicsr.layers.moments import shrink_covariance


def _layer(**kwargs):
    torch.manual_seed(0)
    return FastDeconv(8, 6, 3, padding=1, block=4, **kwargs).double()


def test_shrinkage_whitens_the_shrunk_covariance_and_bounds_its_condition():
    layer, plain = _layer(shrinkage=0.2), _layer()
    x = correlated_input(8)
    mean, cov = plain.batch_moments(x)
    d = cov.shape[-1]
    trace = cov.diagonal(dim1=-2, dim2=-1).sum(-1)
    target = 0.8 * cov + 0.2 * trace[:, None, None] / d * torch.eye(d, dtype=cov.dtype)
    torch.testing.assert_close(layer.whitening(cov), isqrt(target, layer.n_iter, 'spectral'))
    torch.testing.assert_close(shrink_covariance(cov, 0.2), target)
    # The bound holds for a singular covariance too: rank 1.
    v = torch.randn(d, 1, dtype=torch.float64)
    eigenvalues = torch.linalg.eigvalsh(shrink_covariance(v @ v.T, 0.2))
    assert eigenvalues.max() / eigenvalues.min() <= 1 + 0.8 / 0.2 * d + 1e-9
    # In training the output is the fold of that whitening.
    out = layer(x)
    weight, bias = layer.fold(mean, layer.whitening(cov))
    torch.testing.assert_close(out, torch.nn.functional.conv2d(x, weight, bias, padding=1))


def test_pooled_statistics_are_those_of_the_batches_together_with_gradient_through_the_current_one():
    layer, single = _layer(stats_batches=3), _layer()
    batches = [correlated_input(8, seed=seed) for seed in range(4)]
    for x in batches[:3]:
        layer(x)
    # Step 4 pools batches 2, 3 and 4: the moments of their samples together (equal counts).
    x = batches[3].clone().requires_grad_()
    out = layer(x)
    mean, cov = single.batch_moments(torch.cat(batches[1:]))
    torch.testing.assert_close(layer.running_mean, _running(single.momentum, [
        single.batch_moments(batches[0])[0],
        single.batch_moments(torch.cat(batches[:2]))[0],
        single.batch_moments(torch.cat(batches[:3]))[0],
        mean]))
    weight, bias = layer.fold(mean, layer.whitening(cov))
    torch.testing.assert_close(out, torch.nn.functional.conv2d(x, weight, bias, padding=1))
    # The earlier batches are constants: the input gradient equals that of pooling with them detached.
    grad = torch.autograd.grad(out.square().sum(), x)[0]
    past = [single.batch_moments(b) for b in batches[1:3]]
    x2 = batches[3].clone().requires_grad_()
    m, c = single.batch_moments(x2)
    means = torch.stack([m] + [p[0] for p in past])
    shifts = means - means.mean(0)
    pooled_cov = torch.stack([c] + [p[1] for p in past]).mean(0) + (shifts[..., None] * shifts[..., None, :]).mean(0)
    w2, b2 = layer.fold(means.mean(0), layer.whitening(pooled_cov))
    expected = torch.autograd.grad(torch.nn.functional.conv2d(x2, w2, b2, padding=1).square().sum(), x2)[0]
    torch.testing.assert_close(grad, expected)
    assert not any(p.requires_grad for p in layer.carried_state()['pooled'][0])


def _running(momentum, means):
    running = torch.zeros_like(means[0])
    for mean in means:
        running = running * (1 - momentum) + mean * momentum
    return running


def test_pooled_moments_are_carried_so_a_resumed_layer_continues_exactly():
    layer = _layer(stats_batches=3)
    batches = [correlated_input(8, seed=seed) for seed in range(5)]
    for x in batches[:3]:
        layer(x)
    saved, carried = copy.deepcopy(layer.state_dict()), copy.deepcopy(layer.carried_state())
    expected = [layer(x) for x in batches[3:]]

    resumed = _layer(stats_batches=3)
    resumed.load_state_dict(saved)
    resumed.load_carried_state(carried)
    for x, out in zip(batches[3:], expected):
        assert torch.equal(resumed(x), out)
    # Without the carried state the pool starts afresh: a different output.
    fresh = _layer(stats_batches=3)
    fresh.load_state_dict(saved)
    assert not torch.equal(fresh(batches[3]), expected[0])


def test_defaults_pool_nothing_and_shrink_nothing():
    layer, again = _layer(), _layer(stats_batches=1, shrinkage=0.0)
    for seed in range(3):
        x = correlated_input(8, seed=seed)
        assert torch.equal(layer(x), again(x))
    assert layer.carried_state() is None
    assert 'stats_batches=1, shrinkage=0.0' in repr(layer)


@pytest.mark.parametrize('kwargs', [{'shrinkage': 1.0}, {'shrinkage': -0.1}, {'shrinkage': True},
                                    {'stats_batches': 0}, {'stats_batches': 2.0}])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        FastDeconv(8, 6, 3, **kwargs)
