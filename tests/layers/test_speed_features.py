"""Speed and deployment features: patch moments' backward, fast mode, eval caching, fusing, autocast."""
import copy
import runpy
import sys
from pathlib import Path

import pytest
import torch
from helpers import correlated_input
from basicsr.archs.edsr_arch import EDSR
from torch.nn import functional as F

from deconv_basicsr import fuse_deconv
from deconv_basicsr.archs.deconv_edsr_arch import DeconvEDSR
from deconv_basicsr.archs.deconv_srcnn_arch import DeconvSRCNN
from deconv_basicsr.layers import FastDeconv, fuse_state_dict, fused_conv
from deconv_basicsr.layers.moments import patch_moments, symmetric_gram

CONVERT_SCRIPT = Path(__file__).resolve().parents[2] / 'scripts' / 'convert_checkpoint.py'


def _tiny_edsr(**kwargs):
    torch.manual_seed(0)
    return DeconvEDSR(3, 3, num_feat=8, num_block=2, upscale=2, block=8, **kwargs)


def _train(model, steps, seed=0, size=12):
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        lq = torch.rand(2, 3, size, size, generator=g)
        optimizer.zero_grad()
        F.l1_loss(model(lq), F.interpolate(lq, scale_factor=2)).backward()
        optimizer.step()
    return optimizer


# ---- patch moments: one-product backward from the input, against autograd through the plain formula -----

# (in, kernel, stride, padding, dilation, groups, block, sampling_stride): one block per group (strided
# convolution backward), grouped, dilated, overlapping windows; interleaved blocks and 1x1 (gathered again).
MOMENT_GEOMETRIES = [
    (4, 3, 1, 1, 1, 1, 4, 3),
    (6, 3, 2, 1, 1, 3, 2, 1),
    (4, 3, 1, 2, 2, 1, 4, 1),
    (8, 3, 1, 1, 1, 1, 4, 2),
    (6, (3, 1), (2, 1), (1, 0), 1, 1, 2, 3),
    (6, 1, 1, 0, 1, 1, 3, 2),
]


@pytest.mark.parametrize('geometry', MOMENT_GEOMETRIES)
def test_patch_moments_gradient_equals_autograd(geometry):
    c, k, s, p, dil, groups, block, sampling = geometry
    layer = FastDeconv(c, c, k, s, p, dil, groups, block=block, sampling_stride=sampling).double()
    x = correlated_input(c).requires_grad_()
    sampler = layer._sampler()
    mean, cov = patch_moments(x, sampler, 1e-5)
    g = torch.Generator().manual_seed(1)
    grad_mean, grad_cov = torch.randn(mean.shape, generator=g, dtype=torch.float64), torch.randn(
        cov.shape, generator=g, dtype=torch.float64)
    got = torch.autograd.grad((mean * grad_mean).sum() + (cov * grad_cov).sum(), x)[0]

    cols = sampler.gather(x)  # differentiable: a copy of a view of x
    ref_mean = cols.mean(-1)
    centred = cols - ref_mean.unsqueeze(-1)
    ref_cov = centred @ centred.transpose(1, 2) / cols.shape[-1]
    torch.testing.assert_close(mean, ref_mean)
    torch.testing.assert_close(cov, ref_cov + 1e-5 * torch.eye(cov.shape[-1], dtype=torch.float64))
    expected = torch.autograd.grad((ref_mean * grad_mean).sum() + (ref_cov * grad_cov).sum(), x)[0]
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize('d, block_rows', [(10, 3), (12, 4), (7, 8), (288, 128)])
def test_symmetric_gram_equals_the_full_product(d, block_rows):
    # Uneven, even and single blocks, and the size DeconvEDSR-32 uses (two blocks of 144).
    cols = torch.randn(2, d, 50, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(symmetric_gram(cols, block_rows), cols @ cols.transpose(1, 2))


@pytest.mark.parametrize('channels, groups, block', [(4, 1, 2), (6, 3, 64), (4, 1, 4)])
def test_fold_gradcheck(channels, groups, block):
    layer = FastDeconv(channels, 6, 3, padding=1, groups=groups, block=block).double()
    g = torch.Generator().manual_seed(0)
    d = layer.num_features
    mean = torch.randn(groups, d, generator=g, dtype=torch.float64, requires_grad=True)
    deconv = torch.randn(groups, d, d, generator=g, dtype=torch.float64, requires_grad=True)

    def fold(weight, bias, mean, deconv):
        clone = copy.deepcopy(layer)
        del clone.weight, clone.bias
        clone.weight, clone.bias = weight, bias
        return clone.fold(mean, deconv)

    assert torch.autograd.gradcheck(fold, (layer.weight, layer.bias, mean, deconv))


# ---- fast mode ------------------------------------------------------------------------------------------


def test_fast_mode_refreshes_every_period_and_holds_constants_in_between():
    torch.manual_seed(0)
    layer = FastDeconv(8, 6, 3, padding=1, block=4, stats_period=3).double()
    changed = []
    for step in range(7):
        before = layer.running_deconv.clone()
        x = correlated_input(8, seed=step).requires_grad_()
        out = layer(x)
        changed.append(not torch.equal(before, layer.running_deconv))
        # Statistics are constants: the gradient is that of the plain conv with the folded kernel.
        held = layer.carried_state()
        mean, deconv = held['mean'], held['deconv']
        assert not mean.requires_grad and not deconv.requires_grad
        weight, bias = layer.fold(mean, deconv)
        grad_out = torch.randn(out.shape, dtype=torch.float64)
        got = torch.autograd.grad((out * grad_out).sum(), x)[0]
        expected = torch.autograd.grad((F.conv2d(x, weight.detach(), bias.detach(), padding=1) * grad_out).sum(), x)[0]
        torch.testing.assert_close(got, expected)
    assert changed == [True, False, False, True, False, False, True]
    assert layer.num_batches_tracked.item() == 7

    # A refresh stands for the stats_period steps it is held: the running average moves as in exact mode.
    layer.reset_running_stats()
    layer.load_carried_state(None)
    layer(correlated_input(8, seed=8))
    momentum = 1 - (1 - layer.momentum)**3
    eye = torch.eye(layer.num_features, dtype=torch.float64)
    torch.testing.assert_close(layer.running_deconv[0], (1 - momentum) * eye + momentum * layer.carried_state()['deconv'][0])

    # Held statistics are not saved; after loading, the next step refreshes them.
    layer.load_state_dict(copy.deepcopy(layer.state_dict()))
    before = layer.running_deconv.clone()
    layer(correlated_input(8, seed=10))
    assert not torch.equal(before, layer.running_deconv)


def test_archs_accept_stats_period():
    assert all(m.stats_period == 4 for m in _tiny_edsr(stats_period=4).modules() if isinstance(m, FastDeconv))
    srcnn = DeconvSRCNN(num_feat=(8, 4), deconv_layers=(1, 2), stats_period=2)
    assert srcnn.conv1.stats_period == srcnn.conv2.stats_period == 2


# ---- eval caching ---------------------------------------------------------------------------------------


def _uncached(layer, x):
    """Eval output computed without the cache (autograd needs a graph through the parameters)."""
    with torch.enable_grad():
        return layer(x).detach()


def _counting_folds(layer, monkeypatch):
    calls = []
    original = layer.eval_kernel
    monkeypatch.setattr(layer, 'eval_kernel', lambda: calls.append(1) or original())
    return calls


def test_eval_kernel_is_cached_and_refreshed_when_it_may_have_changed(monkeypatch):
    torch.manual_seed(0)
    layer = FastDeconv(8, 6, 3, padding=1, block=4).double()
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
    layer(correlated_input(8, seed=1)).sum().backward()
    optimizer.step()
    calls = _counting_folds(layer, monkeypatch)
    x = correlated_input(8, seed=2)
    layer.eval()

    def check(expected_folds):
        with torch.no_grad():
            out = layer(x)
        assert len(calls) == expected_folds
        torch.testing.assert_close(out, _uncached(layer, x), rtol=0, atol=0)

    check(1)
    check(1)  # reused
    layer.eval()
    check(1)  # still reused: only train() drops it
    optimizer.zero_grad()
    with torch.enable_grad():
        layer(x).sum().backward()  # eval-mode fine-tuning: not cached, builds a graph
    optimizer.step()
    check(2)  # optimizer step in eval mode
    with torch.no_grad():
        layer.weight.data.mul_(0.9)  # invisible to version counters, as in BasicSR's EMA update
    check(3)
    with torch.no_grad():
        layer.running_deconv.mul_(1.1)  # an in-place update of a buffer, as BasicSR's EMA copies them
    check(4)
    fresh = FastDeconv(8, 6, 3, padding=1, block=4).double()
    fresh(correlated_input(8, seed=3))
    layer.load_state_dict(fresh.state_dict())
    check(5)
    check(5)

    # train() drops the cache; a training step moves the running statistics; eval() sees them.
    layer.train()
    assert layer._eval_cache is None
    layer(correlated_input(8, seed=4))
    layer.eval()
    check(6)


def test_eval_with_input_gradient_only_may_use_the_cache():
    torch.manual_seed(0)
    layer = FastDeconv(8, 6, 3, padding=1, block=4).double().eval()
    layer.requires_grad_(False)
    x = correlated_input(8).requires_grad_()
    out = layer(x)
    assert layer._eval_cache is not None
    grad, = torch.autograd.grad(out.sum(), x)
    weight, bias = layer.eval_kernel()
    expected, = torch.autograd.grad(F.conv2d(x, weight, bias, padding=1).sum(), x)
    torch.testing.assert_close(grad, expected)


# ---- fusing ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize('kwargs', [
    dict(in_channels=8, out_channels=6, kernel_size=3, padding=1, block=4),
    dict(in_channels=6, out_channels=6, kernel_size=3, stride=2, padding=2, dilation=2, groups=3),
    dict(in_channels=4, out_channels=5, kernel_size=(3, 1), padding=(1, 0), bias=False),
])
def test_fused_conv_equals_the_layer_in_eval_mode(kwargs):
    torch.manual_seed(0)
    layer = FastDeconv(**kwargs).double()
    for seed in range(3):
        layer(correlated_input(kwargs['in_channels'], seed=seed))
    layer.eval()
    conv = fused_conv(layer)
    assert type(conv) is torch.nn.Conv2d and conv.bias is not None and not conv.training
    x = correlated_input(kwargs['in_channels'], seed=5)
    with torch.no_grad():
        torch.testing.assert_close(conv(x), layer(x))


def test_fused_deconv_edsr_loads_strictly_into_edsr_with_the_same_output():
    model = _tiny_edsr()
    _train(model, 3)
    model.eval()
    x = torch.rand(1, 3, 10, 14)
    with torch.no_grad():
        expected = model(x)

    fused = fuse_deconv(copy.deepcopy(model))
    assert not any(isinstance(m, FastDeconv) for m in fused.modules())
    plain = EDSR(3, 3, num_feat=8, num_block=2, upscale=2).eval()
    plain.load_state_dict(fused.state_dict(), strict=True)
    plain_from_checkpoint = EDSR(3, 3, num_feat=8, num_block=2, upscale=2).eval()
    plain_from_checkpoint.load_state_dict(fuse_state_dict(model.state_dict()), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), expected, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(plain(x), expected, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(plain_from_checkpoint(x), expected, rtol=1e-5, atol=1e-5)


def test_convert_checkpoint_script(tmp_path, monkeypatch, capsys):
    model = _tiny_edsr()
    _train(model, 2)
    ema = copy.deepcopy(model)
    _train(ema, 1, seed=1)
    source, target = tmp_path / 'net_g.pth', tmp_path / 'plain.pth'
    torch.save({'params': model.state_dict(), 'params_ema': ema.state_dict()}, source)
    monkeypatch.setattr(sys, 'argv', ['convert_checkpoint.py', str(source), str(target)])
    runpy.run_path(str(CONVERT_SCRIPT), run_name='__main__')
    out = capsys.readouterr().out
    assert 'params: 4 FastDeconv layers fused' in out and 'params_ema: 4 FastDeconv layers fused' in out
    converted = torch.load(target, weights_only=True)
    x = torch.rand(1, 3, 9, 9)
    for key, net in (('params', model), ('params_ema', ema)):
        plain = EDSR(3, 3, num_feat=8, num_block=2, upscale=2).eval()
        plain.load_state_dict(converted[key], strict=True)
        with torch.no_grad():
            torch.testing.assert_close(plain(x), net.eval()(x), rtol=1e-5, atol=1e-5)


# ---- autocast (CPU, bfloat16) ---------------------------------------------------------------------------


def _bfloat16_gradient_error(model, lq, gt):
    """Relative error of all parameter gradients under bfloat16 autocast against float32 (model unchanged)."""
    model = copy.deepcopy(model)
    reference = copy.deepcopy(model)
    F.l1_loss(reference(lq), gt).backward()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        loss = F.l1_loss(model(lq), gt)
    assert torch.isfinite(loss)
    loss.backward()
    grads = torch.cat([p.grad.flatten() for p in model.parameters()])
    assert torch.isfinite(grads).all()
    expected = torch.cat([p.grad.flatten() for p in reference.parameters()])
    return float((grads - expected).norm() / expected.norm())


@pytest.mark.parametrize('stats_period', [1, 2])
def test_bfloat16_autocast_training_is_finite_and_close_to_float32(stats_period):
    g = torch.Generator().manual_seed(0)
    lq = torch.rand(2, 3, 12, 12, generator=g)
    gt = F.interpolate(lq, scale_factor=2)
    model = _tiny_edsr(stats_period=stats_period)
    torch.manual_seed(0)
    plain = EDSR(3, 3, num_feat=8, num_block=2, upscale=2)
    # bfloat16 keeps ~3 significant digits: no worse than the plain network's own bfloat16 error.
    assert _bfloat16_gradient_error(model, lq, gt) < 2 * _bfloat16_gradient_error(plain, lq, gt) + 0.01

    reference = copy.deepcopy(model)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        model(lq)
    reference(lq)
    for m, m_ref in zip(model.modules(), reference.modules()):
        if isinstance(m, FastDeconv):
            assert m.running_deconv.dtype == torch.float32
            assert (m.running_deconv - m_ref.running_deconv).norm() / m_ref.running_deconv.norm() < 1e-2

    model.eval()
    reference.eval()
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        out = model(lq)
    with torch.no_grad():
        expected = reference(lq)
    assert (out.float() - expected).norm() / expected.norm() < 2e-2
