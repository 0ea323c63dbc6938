"""DeconvNet: any registered BasicSR arch with selected convs deconvolved, from options alone.

Tiny MSRResNet and RCAN: which convs are converted, checkpoint keys, channel attention kept plain, training
steps inside BasicSR's SRModel, and fusing back to the plain arch.
"""
import io

import pytest
import torch
import yaml

import deconv_basicsr
from basicsr.archs import build_network
from basicsr.models import build_model
from basicsr.utils.options import ordered_yaml
from torch import nn
from helpers import model_options

from deconv_basicsr.layers import FastDeconv

MSRRESNET = {'type': 'MSRResNet', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_block': 2, 'upscale': 2}
RCAN = {'type': 'RCAN', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_group': 1, 'num_block': 2,
        'squeeze_factor': 4, 'upscale': 2}
STATISTICS = ('running_mean', 'running_deconv', 'num_batches_tracked')

DECONV_MSRRESNET_YAML = """
network_g:
  type: DeconvNet
  arch:
    type: MSRResNet
    num_in_ch: 3
    num_out_ch: 3
    num_feat: 8
    num_block: 2
    upscale: 2
  include: ['body.*']
  exclude: ['body.1.conv2']
  block: 4
  n_iter: 5
"""


def _deconv_names(net):
    return sorted(name for name, module in net.named_modules() if isinstance(module, FastDeconv))


def _deconv_net(arch, **kwargs):
    return build_network({'type': 'DeconvNet', 'arch': dict(arch), **kwargs})


def _parameter_keys(state_dict):
    return {key for key in state_dict if key.rpartition('.')[2] not in STATISTICS}


def test_deconv_msrresnet_from_yaml():
    opt = yaml.load(io.StringIO(DECONV_MSRRESNET_YAML), Loader=ordered_yaml()[0])
    net = build_network(dict(opt['network_g']))
    assert type(net).__name__ == 'MSRResNet'  # the wrapped arch itself, not a wrapper module
    assert _deconv_names(net) == ['body.0.conv1', 'body.0.conv2', 'body.1.conv1']
    assert net.body[0].conv1.block == 4 and net.body[0].conv1.num_features == 36
    assert type(net.conv_first) is nn.Conv2d and type(net.body[1].conv2) is nn.Conv2d


@pytest.mark.parametrize('arch', [MSRRESNET, RCAN], ids=['MSRResNet', 'RCAN'])
@pytest.mark.filterwarnings('ignore:DeconvNet. keeping')
def test_checkpoint_keeps_the_wrapped_arch_parameter_names(arch):
    torch.manual_seed(0)
    plain = build_network(dict(arch))
    torch.manual_seed(0)
    deconv = _deconv_net(arch, block=8)
    assert len(_deconv_names(deconv)) > 3
    plain_state, deconv_state = plain.state_dict(), deconv.state_dict()
    # Same parameter (and plain buffer) names and, for the same seed, the same initial weights.
    assert _parameter_keys(deconv_state) == set(plain_state)
    for key, value in plain_state.items():
        assert torch.equal(deconv_state[key], value), key
    # A plain checkpoint loads into the deconvolution network; only the statistics are new.
    missing, unexpected = deconv.load_state_dict(plain_state, strict=False)
    assert missing and set(missing) == set(deconv_state) - set(plain_state) and not unexpected


def test_rcan_channel_attention_stays_plain_with_a_warning():
    with pytest.warns(UserWarning, match='globally pooled features'):
        net = _deconv_net(RCAN, include=['body.*'], block=8)
    names = _deconv_names(net)
    assert 'body.0.residual_group.0.rcab.0' in names and 'body.0.conv' in names
    assert not [name for name in names if '.attention.' in name]
    assert 'conv_first' not in names and 'upsample.0' not in names


def test_bad_patterns_are_refused_naming_the_option_key():
    with pytest.raises(ValueError, match=r"network_g.include pattern 'trunk\.\*' matches no conv of MSRResNet"):
        _deconv_net(MSRRESNET, include=['trunk.*'])
    with pytest.raises(ValueError, match='network_g.exclude'):
        _deconv_net(MSRRESNET, exclude=['nothing'])
    with pytest.raises(ValueError, match='network_g.arch'):
        build_network({'type': 'DeconvNet', 'arch': 'MSRResNet'})


@pytest.mark.parametrize('arch,include', [(MSRRESNET, ['body.*']), (RCAN, ['body.*'])], ids=['MSRResNet', 'RCAN'])
@pytest.mark.filterwarnings('ignore:DeconvNet. keeping')
def test_srmodel_trains_then_fuses_back_to_the_plain_arch(arch, include):
    torch.manual_seed(0)
    model = build_model(model_options({'type': 'DeconvNet', 'arch': dict(arch), 'include': include, 'block': 8}))
    net = model.net_g
    assert _deconv_names(net)
    before = {key: value.clone() for key, value in net.state_dict().items()}
    generator = torch.Generator().manual_seed(0)
    for step in range(1, 4):
        gt = torch.rand(2, 3, 24, 24, generator=generator)
        model.feed_data({'lq': nn.functional.avg_pool2d(gt, 2), 'gt': gt})
        model.optimize_parameters(step)
        assert torch.isfinite(torch.tensor(model.log_dict['l_pix']))
    after = net.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in _parameter_keys(after)), 'no learning'
    assert all(after[k] == 3 for k in after if k.endswith('num_batches_tracked'))
    for key, value in net.named_buffers():  # the EMA network carries the trained statistics
        assert torch.equal(model.net_g_ema.state_dict()[key], value), key

    # Fused: plain convolutions computing what the trained network computes in eval mode, under the
    # wrapped arch's own keys, so the checkpoint loads strictly into the plain arch.
    net.eval()
    lq = torch.rand(1, 3, 10, 14, generator=generator)
    with torch.no_grad():
        expected = net(lq)
        fused = deconv_basicsr.fuse_deconv(net)
        assert fused is net and not _deconv_names(fused)
        assert torch.allclose(fused(lq), expected, atol=1e-5, rtol=1e-4)
        plain = build_network(dict(arch)).eval()
        plain.load_state_dict(fused.state_dict(), strict=True)
        assert torch.allclose(plain(lq), expected, atol=1e-5, rtol=1e-4)
