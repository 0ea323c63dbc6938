"""``deconv_basicsr.inference``: loading trained and fused checkpoints, tiled inference, image layouts."""
import sys

import numpy as np
import pytest
import torch

from basicsr.archs import build_network
from deconv_basicsr.inference import (CheckpointError, edsr_options, load_network, upscale_image,
                                      upscale_tensor)
from deconv_basicsr.layers import FastDeconv, fuse_state_dict

from helpers import tiny_network


def _reference(checkpoint, key='params_ema'):
    """The trained DeconvEDSR itself (unfused), in eval mode, from the checkpoint's ``key``."""
    path, network_g = checkpoint
    net = build_network(dict(network_g)).eval()
    net.load_state_dict(torch.load(path, weights_only=True)[key])
    return net


def test_import_keeps_research_code_and_plots_out():
    code = ('import sys, deconv_basicsr.inference; '
            'print(sorted(m for m in sys.modules if m.startswith(("matplotlib", "deconv_basicsr.experiments"))))')
    import subprocess
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == '[]'


def test_trained_checkpoint_loads_fused_and_equals_the_deconv_network(deconv_edsr_checkpoint):
    net = load_network(deconv_edsr_checkpoint[0])
    assert type(net).__name__ == 'EDSR'  # no option file: EDSR's layout read from the fused weights
    assert not any(isinstance(m, FastDeconv) for m in net.modules())
    assert not any(p.requires_grad for p in net.parameters())
    x = torch.rand(1, 3, 11, 13)
    with torch.no_grad():
        torch.testing.assert_close(net(x), _reference(deconv_edsr_checkpoint)(x), rtol=1e-5, atol=1e-5)
        # With the option file the network is DeconvEDSR, fused; 'params' when there is no 'params_ema'.
        by_options = load_network(deconv_edsr_checkpoint[0], deconv_edsr_checkpoint[1])
        assert type(by_options).__name__ == 'DeconvEDSR'
        torch.testing.assert_close(by_options(x), net(x), rtol=1e-6, atol=1e-6)


def test_fused_and_bare_checkpoints_load(deconv_edsr_checkpoint, tmp_path):
    params = torch.load(deconv_edsr_checkpoint[0], weights_only=True)['params']
    torch.save({'params': fuse_state_dict(params)}, tmp_path / 'fused.pth')
    torch.save(params, tmp_path / 'bare.pth')
    x = torch.rand(1, 3, 9, 10)
    expected = _reference(deconv_edsr_checkpoint, 'params')(x)
    for name in ('fused.pth', 'bare.pth'):
        with torch.no_grad():
            torch.testing.assert_close(load_network(tmp_path / name)(x), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('network_g', [
    dict(type='DeconvSRCNN', num_in_ch=3, num_out_ch=3, upscale=2, num_feat=[16, 8], kernel_size=[5, 3, 3]),
    dict(type='DeconvNet', arch=tiny_network('EDSR'), include=['body.*', 'conv_first'], block=4),
])
def test_other_archs_load_through_their_options(network_g, tmp_path, train_tiny):
    net = train_tiny(network_g)
    torch.save({'params': net.state_dict()}, tmp_path / 'net.pth')
    loaded = load_network(tmp_path / 'net.pth', network_g)
    assert not any(isinstance(m, FastDeconv) for m in loaded.modules())
    x = torch.rand(1, 3, 12, 10)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), net(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('upscale, num_block', [(2, 1), (3, 2), (4, 3)])
def test_edsr_options_read_from_the_shapes(upscale, num_block):
    network_g = dict(type='EDSR', num_in_ch=3, num_out_ch=3, num_feat=8, num_block=num_block, upscale=upscale)
    assert edsr_options(build_network(dict(network_g)).state_dict()) == network_g


def test_wrong_checkpoints_give_one_line_naming_the_file(deconv_edsr_checkpoint, tmp_path):
    (tmp_path / 'text.pth').write_text('not a checkpoint')
    torch.save({'iter': 3}, tmp_path / 'state.pth')
    srcnn = dict(type='SRCNN', num_in_ch=3, num_out_ch=3, upscale=2)
    torch.save({'params': build_network(dict(srcnn)).state_dict()}, tmp_path / 'srcnn.pth')
    cases = [(tmp_path / 'missing.pth', None, 'no such file'),
             (tmp_path / 'text.pth', None, 'not a PyTorch checkpoint'),
             (tmp_path / 'state.pth', None, 'holds no network weights'),
             (tmp_path / 'srcnn.pth', None, "do not have EDSR's layout"),
             (deconv_edsr_checkpoint[0], srcnn, 'does not fit network_g (type SRCNN)'),
             (deconv_edsr_checkpoint[0], dict(tiny_network('EDSR'), num_feat=16), 'of another shape')]
    for path, network_g, message in cases:
        with pytest.raises(CheckpointError) as info:
            load_network(path, network_g)
        assert str(path) in str(info.value) and message in str(info.value) and '\n' not in str(info.value)
    # The option file describes a network other than EDSR: it loads.
    assert type(load_network(tmp_path / 'srcnn.pth', srcnn)).__name__ == 'SRCNN'


@pytest.mark.parametrize('tile', [4, 7, 16])
def test_tiles_equal_the_whole_image(deconv_edsr_checkpoint, tile):
    """The tiny network's receptive radius is 6 input pixels (docs/inference.md): a pad of 6 is exact,
    a pad of 2 is not, which shows the comparison can fail."""
    net = load_network(deconv_edsr_checkpoint[0])
    x = torch.rand(2, 3, 19, 23)
    whole = upscale_tensor(net, x)
    assert whole.shape == (2, 3, 38, 46)
    torch.testing.assert_close(upscale_tensor(net, x, tile=tile, tile_pad=6), whole, rtol=1e-5, atol=1e-6)
    assert (upscale_tensor(net, x, tile=tile, tile_pad=2) - whole).abs().max() > 1e-3


@pytest.mark.parametrize('dtype', [np.uint8, np.uint16])
@pytest.mark.parametrize('channels', [1, 3, 4])
def test_images_keep_bit_depth_and_channels(deconv_edsr_checkpoint, dtype, channels):
    net = load_network(deconv_edsr_checkpoint[0])
    rng = np.random.default_rng(0)
    peak = np.iinfo(dtype).max
    shape = (9, 11) if channels == 1 else (9, 11, channels)
    img = rng.integers(0, peak + 1, size=shape).astype(dtype)
    out = upscale_image(net, img)
    assert out.dtype == dtype and out.shape == (18, 22, *shape[2:])
    # Colour goes through the network as RGB in [0, 1].
    bgr = img if channels == 1 else img[..., :3]
    rgb = np.repeat(bgr[..., None], 3, axis=2) if channels == 1 else bgr[..., ::-1]
    x = torch.from_numpy(rgb.astype(np.float32).transpose(2, 0, 1) / peak)[None]
    expected = net(x)[0].clamp(0, 1).numpy().transpose(1, 2, 0)
    expected = expected.mean(axis=2) if channels == 1 else expected[..., ::-1]
    got = out if channels == 1 else out[..., :3]
    assert np.abs(got.astype(np.float64) / peak - expected).max() <= 0.5 / peak + 1e-6
    if channels == 4:  # alpha: upscaled by bicubic interpolation, a constant alpha stays constant
        img[..., 3] = peak // 3
        assert (upscale_image(net, img)[..., 3] == peak // 3).all()
    assert np.array_equal(upscale_image(net, img, tile=4, tile_pad=6), upscale_image(net, img))


def test_unsupported_images_are_refused_clearly(deconv_edsr_checkpoint):
    net = load_network(deconv_edsr_checkpoint[0])
    with pytest.raises(ValueError, match='float32 samples are not supported'):
        upscale_image(net, np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match='2-channel images are not supported'):
        upscale_image(net, np.zeros((4, 4, 2), np.uint8))


@pytest.mark.parametrize('precision', [torch.bfloat16, torch.float16])
def test_half_precisions_run_close_to_float32(deconv_edsr_checkpoint, precision):
    x = torch.rand(1, 3, 10, 10)
    expected = load_network(deconv_edsr_checkpoint[0])(x)
    got = upscale_tensor(load_network(deconv_edsr_checkpoint[0], dtype=precision), x.to(precision))
    assert got.dtype == precision
    assert (got.float() - expected).abs().max() < 0.05


@pytest.mark.parametrize('upscale', [2, 3, 4])
def test_edsr_receptive_radius_is_two_per_block_plus_four(upscale):
    """The tile pad docs/inference.md gives for EDSR (``TILE_PAD`` covers 18 blocks): exact, one less is not."""
    torch.manual_seed(0)
    net = build_network(dict(type='EDSR', num_in_ch=3, num_out_ch=3, num_feat=8, num_block=2, upscale=upscale)).eval()
    x = torch.rand(1, 3, 24, 21)
    with torch.no_grad():
        whole = net(x)
        torch.testing.assert_close(upscale_tensor(net, x, tile=9, tile_pad=2 * 2 + 4), whole, rtol=1e-5, atol=1e-6)
        # Weak (random weights), yet far above the float rounding of the exact case.
        assert (upscale_tensor(net, x, tile=9, tile_pad=2 * 2 + 3) - whole).abs().max() > 1e-5
