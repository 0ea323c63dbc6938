"""The archs: registry, defaults, EDSR compatibility, and training steps inside BasicSR's model types."""
import inspect

import pytest
import torch
from torch import nn
from helpers import model_options

import deconv_basicsr.plugin  # noqa: F401  (BasicSR importable, the archs and the model registered)
from basicsr.archs import build_network
from basicsr.archs.edsr_arch import EDSR
from basicsr.models import build_model
from basicsr.utils.registry import ARCH_REGISTRY

from deconv_basicsr.archs.deconv_edsr_arch import DeconvEDSR
from deconv_basicsr.layers import DECONV_SETTINGS, FastDeconv

ARCHS = ['DeconvEDSR', 'SRCNN', 'DeconvSRCNN']


def _deconv_names(net):
    return sorted(name for name, module in net.named_modules() if isinstance(module, FastDeconv))


def test_layer_and_archs_are_registered():
    for name in ARCHS + ['FastDeconv']:
        assert name in ARCH_REGISTRY


@pytest.mark.parametrize('name', ARCHS)
def test_builds_from_minimal_options(name):
    net = build_network({'type': name, 'num_in_ch': 3, 'num_out_ch': 3, 'upscale': 2})
    net.eval()
    with torch.no_grad():
        assert net(torch.rand(1, 3, 12, 10)).shape == (1, 3, 24, 20)


def test_fast_deconv_builds_from_options():
    layer = build_network({'type': 'FastDeconv', 'in_channels': 4, 'out_channels': 2, 'kernel_size': 3})
    assert isinstance(layer, FastDeconv)


def test_deconv_edsr_is_edsr_with_body_convs_deconvolved():
    torch.manual_seed(0)
    edsr = EDSR(3, 3, num_feat=16, num_block=2, upscale=2)
    torch.manual_seed(0)
    deconv = DeconvEDSR(3, 3, num_feat=16, num_block=2, upscale=2)
    assert _deconv_names(deconv) == ['body.0.conv1', 'body.0.conv2', 'body.1.conv1', 'body.1.conv2']
    edsr_state, deconv_state = edsr.state_dict(), deconv.state_dict()
    # Same parameter names and, for the same seed, the same initial weights; DeconvEDSR only adds buffers.
    for key, value in edsr_state.items():
        assert torch.equal(deconv_state[key], value), key
    extra = set(deconv_state) - set(edsr_state)
    assert extra and all(key.rsplit('.', 1)[1] in ('running_mean', 'running_deconv', 'num_batches_tracked')
                         for key in extra)
    missing, unexpected = deconv.load_state_dict(edsr_state, strict=False)
    assert set(missing) == extra and not unexpected


def test_deconv_edsr_parts_are_configurable():
    net = DeconvEDSR(3, 3, num_feat=8, num_block=1, upscale=2, deconv_modules=['conv_first', 'upsample'], block=4)
    assert _deconv_names(net) == ['conv_first', 'upsample.0']
    assert net.conv_first.block == 3 and net.upsample[0].block == 4
    with pytest.raises(ValueError, match='deconv_modules'):
        DeconvEDSR(3, 3, deconv_modules=['head'])


def test_srcnn_defaults_and_deconv_layers():
    srcnn = build_network({'type': 'SRCNN', 'num_in_ch': 3, 'num_out_ch': 3, 'upscale': 3})
    assert [m.kernel_size for m in (srcnn.conv1, srcnn.conv2, srcnn.conv3)] == [(9, 9), (5, 5), (5, 5)]
    assert (srcnn.conv1.out_channels, srcnn.conv2.out_channels) == (64, 32)
    assert not _deconv_names(srcnn)
    deconv = build_network({'type': 'DeconvSRCNN', 'num_in_ch': 3, 'num_out_ch': 3, 'upscale': 3})
    assert _deconv_names(deconv) == ['conv2'] and deconv.conv2.num_features == 400  # the study's choice
    first_two = build_network({'type': 'DeconvSRCNN', 'num_in_ch': 3, 'num_out_ch': 3, 'deconv_layers': [1, 2],
                               'block': 8})
    assert _deconv_names(first_two) == ['conv1', 'conv2']
    assert first_two.conv1.num_features == 243 and first_two.conv2.num_features == 200
    with pytest.raises(ValueError, match='deconv_layers'):
        build_network({'type': 'DeconvSRCNN', 'num_in_ch': 3, 'num_out_ch': 3, 'deconv_layers': [4]})


def _layer_settings(layer):
    return layer.n_iter, layer.freeze


def test_input_layers_follow_the_reference_convention_by_default():
    first_two = {'type': 'DeconvSRCNN', 'num_in_ch': 3, 'num_out_ch': 3, 'deconv_layers': [1, 2]}
    srcnn = build_network(first_two)
    assert _layer_settings(srcnn.conv1) == (15, True) and _layer_settings(srcnn.conv2) == (5, False)
    same = build_network({**first_two, 'input_layer': 'same', 'n_iter': 7})
    assert _layer_settings(same.conv1) == (7, False) == _layer_settings(same.conv2)
    custom = build_network({**first_two, 'freeze_iter': 20, 'input_layer': {'n_iter': 10, 'freeze': True}})
    assert _layer_settings(custom.conv1) == (10, True) and custom.conv1.freeze_iter == 20
    assert _layer_settings(custom.conv2) == (5, False)
    edsr = DeconvEDSR(3, 3, num_feat=8, num_block=1, upscale=2, deconv_modules=['conv_first', 'body'])
    assert _layer_settings(edsr.conv_first) == (15, True) and _layer_settings(edsr.body[0].conv1) == (5, False)
    net = build_network({'type': 'DeconvNet', 'arch': {'type': 'SRCNN', 'num_in_ch': 3, 'num_out_ch': 3}})
    assert _layer_settings(net.conv1) == (15, True) and _layer_settings(net.conv3) == (5, False)


@pytest.mark.parametrize('options', [
    {'type': 'DeconvEDSR', 'num_in_ch': 3, 'num_out_ch': 3},
    {'type': 'DeconvSRCNN'},
    {'type': 'DeconvNet', 'arch': {'type': 'SRCNN'}},
])
def test_layer_settings_are_fastdeconvs_signature_checked_by_name(options):
    arch = ARCH_REGISTRY.get(options['type'])
    keys = set(inspect.signature(arch).parameters)
    assert set(DECONV_SETTINGS) | {'input_layer'} <= keys
    net = build_network({**options, 'momentum': 0.5, 'sampling_stride': 2})
    assert all(m.momentum == 0.5 and m.sampling_stride == 2 for m in net.modules() if isinstance(m, FastDeconv))
    with pytest.raises(ValueError, match=r'^network_g.n_itr: unknown option for Deconv\w+; did you mean n_iter\?$'):
        build_network({**options, 'n_itr': 3})
    with pytest.raises(ValueError, match=r'network_g.input_layer.fraeze: .* did you mean input_layer.freeze\?'):
        build_network({**options, 'input_layer': {'fraeze': True}})
    with pytest.raises(ValueError, match='network_g.input_layer'):
        build_network({**options, 'input_layer': 'exact'})


TINY = {
    'DeconvEDSR': {'type': 'DeconvEDSR', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_block': 1,
                   'upscale': 2, 'block': 8},
    'SRCNN': {'type': 'SRCNN', 'num_in_ch': 3, 'num_out_ch': 3, 'upscale': 2, 'num_feat': [8, 8],
              'kernel_size': [5, 3, 3]},
    'DeconvSRCNN': {'type': 'DeconvSRCNN', 'num_in_ch': 3, 'num_out_ch': 3, 'upscale': 2, 'num_feat': [8, 8],
                    'kernel_size': [5, 3, 3], 'block': 4},
}


def _train_steps(model, steps, lq_size=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    for step in range(1, steps + 1):
        gt = torch.rand(2, 3, 2 * lq_size, 2 * lq_size, generator=g)
        lq = nn.functional.avg_pool2d(gt, 2)
        model.feed_data({'lq': lq, 'gt': gt})
        model.optimize_parameters(step)


@pytest.mark.parametrize('name', ARCHS)
def test_srmodel_trains_and_ema_network_follows_statistics(name):
    model = build_model(model_options(dict(TINY[name])))
    before = {k: v.clone() for k, v in model.net_g.state_dict().items()}
    _train_steps(model, 3)
    after = model.net_g.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in after if k.endswith('weight')), 'no learning'
    assert all(torch.isfinite(v).all() for k, v in model.log_dict.items() if torch.is_tensor(v))
    ema = model.net_g_ema.state_dict()
    for key, value in model.net_g.named_buffers():
        # The EMA network validates and is saved as params_ema: its statistics must be the trained ones.
        assert torch.equal(ema[key], value), key
    if name.startswith('Deconv'):
        assert any(k.endswith('running_deconv') for k, _ in model.net_g.named_buffers())
        assert model.net_g.state_dict()[next(k for k in after if k.endswith('num_batches_tracked'))].item() == 3


def test_deconv_edsr_as_srgan_generator_with_ema():
    options = model_options(
        dict(TINY['DeconvEDSR']),
        model_type='SRGANModel',
        network_d={'type': 'VGGStyleDiscriminator', 'num_in_ch': 3, 'num_feat': 4, 'input_size': 128})
    options['train'].update({
        'optim_d': {'type': 'Adam', 'lr': 1e-4, 'betas': [0.9, 0.99]},
        'gan_opt': {'type': 'GANLoss', 'gan_type': 'vanilla', 'real_label_val': 1.0, 'fake_label_val': 0.0,
                    'loss_weight': 5e-3},
        'net_d_iters': 1, 'net_d_init_iters': 0,
    })
    model = build_model(options)
    assert type(model).__name__ == 'SRGANModel'
    _train_steps(model, 2, lq_size=64)
    assert {'l_g_pix', 'l_g_gan', 'l_d_real', 'l_d_fake'} <= set(model.log_dict)
    assert all(torch.isfinite(torch.as_tensor(v)).all() for v in model.log_dict.values())
    ema = model.net_g_ema.state_dict()
    for key, value in model.net_g.named_buffers():
        assert torch.equal(ema[key], value), key

