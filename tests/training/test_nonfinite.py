"""The non-finite guard: skipped steps, a transient bad batch that training survives, a diverging run that
stops with exit code 3 and saves nothing non-finite, non-finite validation, the layer's one warning."""
import logging
import warnings

import pytest
import torch

import deconv_basicsr.plugin  # noqa: F401  (BasicSR importable, the archs and the model registered)
from basicsr.models import build_model

from deconv_basicsr.training import OptionValueError, check_startup
from deconv_basicsr.training.nonfinite import EXIT_CODE, check_options, first_nonfinite_module
from deconv_basicsr.layers import FastDeconv, name_deconv_layers, recalibrate_deconv_stats
from helpers import (model_options, run_python, sr_options, sr_test_options, tiny_network, write_image_pairs,
                     write_options)


def _model(stop_after=2, enabled=True, model_type='DeconvSRModel'):
    opt = model_options(tiny_network('DeconvEDSR', block=8), model_type=model_type, ema_decay=0)
    opt['train']['nonfinite'] = {'enabled': enabled, 'stop_after': stop_after}
    return build_model(opt)


def _step(model, iteration, bad=False):
    """One training iteration on a fixed batch (``bad``: with one NaN pixel); returns net_g's state after it."""
    lq = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    if bad:
        lq[0, 0, 3, 3] = float('nan')
    model.feed_data({'lq': lq, 'gt': torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))})
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)  # the layer's own report: tested below
        model.optimize_parameters(iteration)
    return {key: value.clone() for key, value in model.net_g.state_dict().items() if 'num_batches' not in key}


@pytest.fixture
def basicsr_log():
    """What BasicSR's logger logs during the test (it does not propagate to pytest's capture)."""
    records = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    logger = logging.getLogger('basicsr')
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def _same(a, b):
    return all(torch.equal(a[key], b[key]) for key in a)


def test_a_transient_non_finite_batch_is_skipped_and_training_goes_on(basicsr_log):
    model = _model(stop_after=2)
    adam = model.optimizer_g
    before = _step(model, 1)
    steps = [state['step'].item() for state in adam.state.values()]
    after_bad = _step(model, 2, bad=True)
    assert _same(before, after_bad) and all(torch.isfinite(v).all() for v in after_bad.values())
    assert [state['step'].item() for state in adam.state.values()] == steps  # Adam's state did not move either
    assert basicsr_log == ['Iteration 2: non-finite loss (l_pix: nan) and gradients (8 of 12 parameters); the update '
                           'was skipped (1 in a row; the run stops at 2 in a row, train.nonfinite.stop_after).']

    after = _step(model, 3)  # stop_after 2 lets it go on, and the count starts again
    assert not _same(after_bad, after) and all(torch.isfinite(v).all() for v in after.values())
    _step(model, 4, bad=True)
    _step(model, 5)
    _step(model, 6, bad=True)
    basicsr_log.clear()
    with pytest.raises(SystemExit) as stop:
        _step(model, 7, bad=True)
    assert stop.value.code == EXIT_CODE == 3
    assert len(basicsr_log) == 1
    assert 'Stopped: 2 non-finite iterations in a row (iterations 6 to 7)' in basicsr_log[0]
    assert 'first went non-finite in the training batch itself (lq holds NaN or inf)' in basicsr_log[0]
    assert 'Hint: train with a lower learning rate (train.optim_g.lr: 0.001)' in basicsr_log[0]


def test_stop_after_one_stops_at_the_first_and_disabled_is_basicsr_behaviour():
    model = _model(stop_after=1)
    _step(model, 1)
    with pytest.raises(SystemExit):
        _step(model, 2, bad=True)

    model = _model(enabled=False)
    _step(model, 1)
    state = _step(model, 2, bad=True)  # BasicSR steps on NaN gradients: NaN weights
    assert not all(torch.isfinite(v).all() for v in state.values())


def test_first_nonfinite_module_is_where_the_values_overflow():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Sequential(torch.nn.Conv2d(4, 4, 3, padding=1), torch.nn.Conv2d(4, 3, 1)))
    x = torch.ones(1, 3, 6, 6)
    with torch.no_grad():
        net[0].weight.fill_(1.0)  # conv 0's outputs are 12 to 27: conv 2.0 sums 36 such inputs
        net[0].bias.zero_()
    assert first_nonfinite_module(net, x) is None
    with torch.no_grad():
        net[2][0].weight.fill_(1e38)  # finite weights whose output overflows (36 * 12 * 1e38 > 3.4e38)
    assert first_nonfinite_module(net, x) == '2.0 (Conv2d)'


def test_the_layer_warns_once_naming_its_path():
    net = torch.nn.Sequential(FastDeconv(3, 4, 3, padding=1, block=3), FastDeconv(4, 4, 3, padding=1, block=4))
    name_deconv_layers(net)
    assert [m.module_path for m in net] == ['0', '1']
    x = torch.rand(2, 3, 9, 9)
    x[0, 1, 4, 4] = float('inf')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        for _ in range(3):
            net(x)
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    # Both layers see non-finite statistics at every step; the network's first layer reports it, once.
    assert len(messages) == 1 and messages[0].startswith('FastDeconv 0: batch statistics of training step 1 are not')


def test_recalibration_leaves_non_finite_batches_out():
    layer = FastDeconv(3, 4, 3, padding=1, block=3)
    good = torch.rand(2, 3, 9, 9)
    bad = good.clone()
    bad[0, 0, 4, 4] = float('nan')
    recalibrate_deconv_stats(layer, [good])
    expected = layer.running_mean.clone(), layer.running_deconv.clone()
    recalibrate_deconv_stats(layer, [bad, good, bad])
    assert torch.allclose(layer.running_mean, expected[0]) and torch.allclose(layer.running_deconv, expected[1])
    recalibrate_deconv_stats(layer, [bad])  # no finite batch: the running statistics stay
    assert torch.allclose(layer.running_deconv, expected[1])


@pytest.mark.parametrize('given,message', [
    ({'stop_after': 0}, 'train.nonfinite.stop_after: takes an int >= 1, got 0'),
    ({'enabled': 'yes'}, "train.nonfinite.enabled: takes true or false, got 'yes'"),
    ({'stop_afer': 2}, 'train.nonfinite.stop_afer: not an option of the non-finite guard (enabled, stop_after); '
     'did you mean stop_after?'),
])
def test_guard_options_are_checked_at_start_up(tmp_path, given, message):
    gt_dir, lq_dir = write_image_pairs(tmp_path / 'data')
    opt = sr_options('bad', gt_dir, lq_dir, tiny_network('EDSR'))
    assert check_options(opt) == {'enabled': True, 'stop_after': 3}
    opt['train']['nonfinite'] = given
    with pytest.raises(OptionValueError) as info:
        check_startup(opt, source='bad.yml')
    assert str(info.value) == f'{message} (fix it in bad.yml)'


def test_a_diverging_run_stops_with_exit_code_3_and_saves_nothing_non_finite(tmp_path):
    """A tiny copy of the quickstart (DeconvEDSR, DeconvSRModel) at learning rate 1e30: its first step is
    finite and makes the weights huge, every later one is NaN; checkpoints at every iteration."""
    gt_dir, lq_dir = write_image_pairs(tmp_path / 'data')
    opt = sr_options('diverge', gt_dir, lq_dir, {**tiny_network('DeconvEDSR', block=8), 'num_block': 2}, total_iter=12,
                     checkpoint_freq=1, val_freq=2, ema_decay=0)
    opt.update(model_type='DeconvSRModel')
    opt['train']['optim_g']['lr'] = 1e30
    result = run_python(['-m', 'deconv_basicsr.train', '-opt', write_options(tmp_path / 'diverge.yml', opt)],
                        cwd=tmp_path)
    out = result.stdout
    assert result.returncode == 3, out
    assert 'Iteration 2: non-finite loss (l_pix: nan)' in out and 'Iteration 4: non-finite' in out
    assert 'Stopped: 3 non-finite iterations in a row (iterations 2 to 4).' in out
    assert 'The values first went non-finite in net_g at body.0.conv1 (FastDeconv)' in out
    assert 'net_g_3.pth, and its training state 3.state are finite and kept' in out
    assert 'Hint: train with a lower learning rate (train.optim_g.lr: 1e+30)' in out
    assert 'iter:       5' not in out  # it stopped
    # Validation says the output is not finite instead of printing a PSNR.
    assert "Validation tiny_val: the network's output is not finite (NaN or inf) on 4 of 4 images: no psnr" in out
    assert '# psnr' not in out.split('iter:       2,')[1]
    # The layer's warning: once, naming the first layer by its path.
    assert out.count('RuntimeWarning') == 1 and 'FastDeconv body.0.conv1: batch statistics of training step 2' in out

    experiment = tmp_path / 'experiments' / 'diverge'
    models = sorted(p.name for p in (experiment / 'models').iterdir())
    assert models == ['net_g_1.pth', 'net_g_2.pth', 'net_g_3.pth']  # no net_g_latest.pth
    assert sorted(p.name for p in (experiment / 'training_states').iterdir()) == ['1.state', '2.state', '3.state']
    for name in models:
        params = torch.load(experiment / 'models' / name)['params']
        assert all(torch.isfinite(value).all() for value in params.values() if value.is_floating_point()), name


def test_a_non_finite_network_is_tested_without_a_psnr(tmp_path):
    gt_dir, lq_dir = write_image_pairs(tmp_path / 'data')
    network_g = tiny_network('EDSR')
    net = build_model(model_options(network_g)).net_g
    state = net.state_dict()
    state['conv_last.bias'][0] = float('nan')
    torch.save({'params_ema': state}, tmp_path / 'nan.pth')
    opt = sr_test_options('nan', gt_dir, lq_dir, network_g, tmp_path / 'nan.pth')
    result = run_python(['-m', 'deconv_basicsr.test', '-opt', write_options(tmp_path / 'test.yml', opt)], cwd=tmp_path)
    assert result.returncode == 0, result.stdout
    assert "Validation tiny_test: the network's output is not finite (NaN or inf) on 4 of 4 images: no psnr" in result.stdout
    assert '# psnr' not in result.stdout
