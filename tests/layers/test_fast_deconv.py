"""FastDeconv against an explicit, unfolded statement of network deconvolution (``deconv_basicsr.experiments.reference_layer``)."""
import copy
import warnings

import pytest
import torch
from helpers import correlated_input
from torch.nn import functional as F

from deconv_basicsr.layers import FastDeconv
from deconv_basicsr.layers.isqrt import newton_schulz, spectral
from deconv_basicsr.experiments.reference_layer import ReferenceLayer, newton_schulz_reference, patch_statistics, whitened_conv

METHODS = ['newton_schulz', 'spectral']

# (in, out, kernel, stride, padding, dilation, block): blocks shared (C > block, interleaved), a whole-patch
# block (block > C), 1x1 (sampled along flattened positions), strided, dilated, non-square kernels.
GEOMETRIES = [
    (8, 6, 3, 1, 1, 1, 4),
    (4, 5, 3, 2, 1, 1, 64),
    (6, 4, 1, 1, 0, 1, 3),
    (6, 4, 5, 1, 2, 1, 2),
    (4, 3, 3, 1, 2, 2, 4),
    (4, 6, (3, 1), (2, 1), (1, 0), 1, 2),
]


def _layer(c, o, k, s, p, dil, block, **kwargs):
    torch.manual_seed(1)
    return FastDeconv(c, o, k, s, p, dil, block=block, **kwargs).double()


@pytest.mark.parametrize('method', METHODS)
@pytest.mark.parametrize('geometry', GEOMETRIES)
def test_train_output_equals_explicit_patch_whitening(geometry, method):
    c, o, k, s, p, dil, block = geometry
    layer = _layer(*geometry, isqrt_method=method)
    x = correlated_input(c)
    mean, deconv = patch_statistics(x, k, p, layer.block, stride=s, dilation=dil)
    expected = whitened_conv(x, layer.weight, layer.bias, mean, deconv, s, p, dil)
    torch.testing.assert_close(layer(x), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('method', METHODS)
@pytest.mark.parametrize('geometry', GEOMETRIES[:4])
def test_gradients_equal_reference(geometry, method):
    c, o, k, s, p, dil, block = geometry
    layer = _layer(*geometry, isqrt_method=method)
    x = correlated_input(c).requires_grad_()
    grad_out = torch.randn(layer(x.detach()).shape, dtype=torch.float64)
    got = torch.autograd.grad((layer(x) * grad_out).sum(), [x, layer.weight, layer.bias])

    x_ref = x.detach().clone().requires_grad_()
    weight = layer.weight.detach().clone().requires_grad_()
    bias = layer.bias.detach().clone().requires_grad_()
    mean, deconv = patch_statistics(x_ref, k, p, layer.block, stride=s, dilation=dil)
    out = whitened_conv(x_ref, weight, bias, mean, deconv, s, p, dil)
    expected = torch.autograd.grad((out * grad_out).sum(), [x_ref, weight, bias])
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize('method', METHODS)
def test_gradcheck(method):
    layer = FastDeconv(4, 3, 3, padding=1, block=2, sampling_stride=1, isqrt_method=method).double()
    x = correlated_input(4, n=1, h=5, w=5).requires_grad_()

    def train_output(x, weight, bias):
        return torch.func.functional_call(copy.deepcopy(layer), {'weight': weight, 'bias': bias}, (x, ))

    assert torch.autograd.gradcheck(train_output, (x, layer.weight, layer.bias))


@pytest.mark.parametrize('method', METHODS)
def test_isqrt_methods_agree_including_repeated_eigenvalues(method):
    g = torch.Generator().manual_seed(3)
    a = torch.randn(30, 12, generator=g, dtype=torch.float64)
    covs = [a.T @ a / 30 + 1e-5 * torch.eye(12, dtype=torch.float64), torch.diag(torch.tensor([2.0, 1, 1, 1, 1e-5],
                                                                                               dtype=torch.float64))]
    fn = newton_schulz if method == 'newton_schulz' else spectral
    for cov in covs:
        cov = cov.requires_grad_()
        grad_out = torch.randn(cov.shape, generator=g, dtype=torch.float64)
        got = fn(cov, 5)
        got_grad, = torch.autograd.grad((got * grad_out).sum(), cov)
        expected = newton_schulz_reference(cov, 5)
        expected_grad, = torch.autograd.grad((expected * grad_out).sum(), cov)
        torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(got_grad, expected_grad, rtol=1e-9, atol=1e-11)


def test_whitening_decorrelates_sampled_patches():
    """With enough Newton–Schulz steps, D whitens the sampled patches: D Cov D = I."""
    layer = FastDeconv(4, 4, 3, padding=1, block=4, n_iter=30, isqrt_method='newton_schulz').double()
    x = correlated_input(4, n=4, h=30, w=30)
    cols = layer.sample_patches(x)[0]
    mean, cov = layer.batch_moments(x)
    deconv = layer.whitening(cov)
    centred = cols - mean[0, :, None]
    white = deconv[0] @ centred
    cov_white = white @ white.T / cols.shape[1]
    torch.testing.assert_close(cov_white, torch.eye(36, dtype=torch.float64), rtol=0, atol=2e-3)


def test_running_statistics_and_eval_output():
    geometry = GEOMETRIES[0]
    c, o, k, s, p, dil, block = geometry
    layer = _layer(*geometry, momentum=0.25)
    x1, x2 = correlated_input(c, seed=1), correlated_input(c, seed=2)
    layer(x1)
    layer(x2)
    stats = [patch_statistics(x, k, p, layer.block) for x in (x1, x2)]
    eye = torch.eye(layer.num_features, dtype=torch.float64)
    expected_mean = 0.75 * 0.25 * stats[0][0] + 0.25 * stats[1][0]
    expected_deconv = 0.75 * (0.75 * eye + 0.25 * stats[0][1]) + 0.25 * stats[1][1]
    torch.testing.assert_close(layer.running_mean[0], expected_mean)
    torch.testing.assert_close(layer.running_deconv[0], expected_deconv)
    assert layer.num_batches_tracked.item() == 2

    layer.eval()
    x3 = correlated_input(c, seed=3)
    before = copy.deepcopy(layer.state_dict())
    expected = whitened_conv(x3, layer.weight, layer.bias, expected_mean, expected_deconv, s, p)
    torch.testing.assert_close(layer(x3), expected)
    for key, value in layer.state_dict().items():
        assert torch.equal(value, before[key]), f'eval changed {key}'


def test_bias_false_still_subtracts_the_mean():
    layer = _layer(8, 6, 3, 1, 1, 1, 4, bias=False)
    assert layer.bias is None
    x = correlated_input(8)
    mean, deconv = patch_statistics(x, 3, 1, layer.block)
    torch.testing.assert_close(layer(x), whitened_conv(x, layer.weight, None, mean, deconv, 1, 1))


@pytest.mark.parametrize('channels, groups', [(8, 2), (6, 6)])
def test_grouped_and_depthwise_have_one_covariance_per_group(channels, groups):
    torch.manual_seed(0)
    layer = FastDeconv(channels, channels, 3, padding=1, groups=groups).double()
    assert layer.block == channels // groups
    assert layer.running_deconv.shape == (groups, layer.num_features, layer.num_features)
    x = correlated_input(channels)
    out = layer(x)
    per_in, per_out = channels // groups, channels // groups
    for g in range(groups):
        xg = x[:, g * per_in:(g + 1) * per_in]
        wg = layer.weight[g * per_out:(g + 1) * per_out]
        bg = layer.bias[g * per_out:(g + 1) * per_out]
        mean, deconv = patch_statistics(xg, 3, 1, per_in)
        torch.testing.assert_close(out[:, g * per_out:(g + 1) * per_out], whitened_conv(xg, wg, bg, mean, deconv, 1, 1))


def test_block_collapse_warns_and_reference_block_rule():
    with pytest.warns(UserWarning, match='gcd = 8'):
        layer = FastDeconv(64, 64, 3, block=24)
    assert layer.block == 8
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert FastDeconv(48, 8, 3, block=64).block == 48  # block > C: the whole patch, no warning
        assert FastDeconv(64, 8, 3, block=16).block == 16


@pytest.mark.parametrize('kwargs, name', [
    (dict(block=0), 'block'),
    (dict(kernel_size=0), 'kernel_size'),
    (dict(stride=(1, 0)), 'stride'),
    (dict(padding='same'), 'padding'),
    (dict(n_iter=0), 'n_iter'),
    (dict(eps=0.0), 'eps'),
    (dict(momentum=1.5), 'momentum'),
    (dict(sampling_stride=0), 'sampling_stride'),
    (dict(freeze_iter=0), 'freeze_iter'),
    (dict(groups=3), 'groups'),
    (dict(isqrt_method='svd'), 'isqrt_method'),
])
def test_nonsense_arguments_are_refused_by_name(kwargs, name):
    args = dict(in_channels=4, out_channels=4, kernel_size=3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        FastDeconv(**args)


def test_state_dict_round_trip_and_conv_weights_load():
    layer = _layer(*GEOMETRIES[0])
    layer(correlated_input(8))
    clone = _layer(*GEOMETRIES[0])
    clone.load_state_dict(layer.state_dict())
    for key, value in layer.state_dict().items():
        assert torch.equal(clone.state_dict()[key], value)
    assert set(layer.state_dict()) == {'weight', 'bias', 'running_mean', 'running_deconv', 'num_batches_tracked'}

    conv = torch.nn.Conv2d(8, 6, 3, padding=1).double()
    fresh = _layer(*GEOMETRIES[0])
    fresh.load_state_dict(conv.state_dict(), strict=False)
    assert torch.equal(fresh.weight, conv.weight)


def _train(layer, inputs, optimizer):
    for x in inputs:
        optimizer.zero_grad()
        layer(x).square().mean().backward()
        optimizer.step()


def test_resume_continues_exactly_including_the_freeze_counter():
    inputs = [correlated_input(8, seed=s) for s in range(8)]

    def fresh():
        layer = _layer(*GEOMETRIES[0], freeze=True, freeze_iter=2)
        return layer, torch.optim.SGD(layer.parameters(), lr=1e-3)

    straight, opt = fresh()
    _train(straight, inputs, opt)

    first, opt = fresh()
    _train(first, inputs[:3], opt)
    state, opt_state = copy.deepcopy(first.state_dict()), copy.deepcopy(opt.state_dict())
    resumed, opt = fresh()
    resumed.load_state_dict(state)
    opt.load_state_dict(opt_state)
    _train(resumed, inputs[3:], opt)
    for key, value in straight.state_dict().items():
        assert torch.equal(resumed.state_dict()[key], value), key


def test_freeze_refreshes_statistics_periodically():
    layer = _layer(*GEOMETRIES[0], freeze=True, freeze_iter=2)
    changed = []
    for step in range(22):
        before = layer.running_deconv.clone()
        layer(correlated_input(8, seed=step))
        changed.append(not torch.equal(before, layer.running_deconv))
    # Steps 0..2 (freeze_iter + 1 of them) refresh, 3..19 use the running statistics, 20 starts over.
    assert changed == [True] * 3 + [False] * 17 + [True] * 2


def test_bfloat16_autocast_keeps_statistics_in_float32():
    torch.manual_seed(0)
    layer = FastDeconv(16, 16, 3, padding=1, block=16)
    reference = copy.deepcopy(layer)
    x = (torch.randn(4, 16, 20, 20) * 60 + 100)  # O(100) activations, as in EDSR's 255-range features
    expected = reference(x)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = layer(x)
    assert out.dtype == torch.bfloat16
    assert torch.isfinite(out).all()
    assert layer.running_deconv.dtype == torch.float32
    torch.testing.assert_close(layer.running_deconv, reference.running_deconv)
    rel = (out.float() - expected).norm() / expected.norm()
    assert rel < 2e-2, rel


def test_loads_reference_checkpoints_and_gives_the_same_eval_output():
    """A state_dict with the reference layer's shapes, (d,) and (d, d) and no step counter, loads strictly."""
    torch.manual_seed(0)
    reference = ReferenceLayer(8, 5, 3, padding=1, block=4).double()
    for seed in range(3):
        reference(correlated_input(8, seed=seed))
    reference.eval()
    state = reference.state_dict()
    assert state['running_mean'].shape == (36, ) and state['running_deconv'].shape == (36, 36)
    layer = FastDeconv(8, 5, 3, padding=1, block=4).double()
    layer.load_state_dict(state)
    layer.eval()
    x = correlated_input(8, seed=5)
    torch.testing.assert_close(layer(x), reference(x), rtol=1e-10, atol=1e-10)
    assert int(layer.num_batches_tracked) == 0
    # The layer's own checkpoints still load as they are.
    again = FastDeconv(8, 5, 3, padding=1, block=4).double()
    again.load_state_dict(layer.state_dict())
    torch.testing.assert_close(again.eval()(x), reference(x), rtol=1e-10, atol=1e-10)
