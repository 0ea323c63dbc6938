"""``python -m deconv_basicsr.export``: ONNX checked in onnxruntime, spandrel's RCAN layout checked in spandrel."""
import numpy as np
import onnxruntime
import pytest
import spandrel
import torch

from basicsr.archs import build_network
from deconv_basicsr import export
from deconv_basicsr.inference import load_network
from deconv_basicsr.interchange import spandrel_state_dict
from deconv_basicsr.layers.fuse import fuse_checkpoint

from helpers import check_python, write_options


def test_onnx_matches_pytorch_at_any_size(deconv_edsr_checkpoint, tmp_path):
    path = deconv_edsr_checkpoint[0]
    result = check_python(['-m', 'deconv_basicsr.export', '-m', str(path), '--onnx', str(tmp_path / 'net.onnx')])
    assert 'dynamic n, h, w' in result.stdout
    session = onnxruntime.InferenceSession(str(tmp_path / 'net.onnx'), providers=['CPUExecutionProvider'])
    net = load_network(path)
    rng = np.random.default_rng(0)
    for shape in [(1, 3, 17, 23), (2, 3, 40, 9)]:  # neither is the 32 x 32 example the export traced
        x = rng.random(shape, dtype=np.float32)
        (y, ) = session.run(['output'], {'input': x})
        assert y.shape == (shape[0], 3, 2 * shape[2], 2 * shape[3])
        np.testing.assert_allclose(y, net(torch.from_numpy(x)).numpy(), rtol=0, atol=1e-4)


def test_basicsr_edsr_layout_is_not_detected_by_spandrel(deconv_edsr_checkpoint, tmp_path):
    """Why the export writes another layout: spandrel knows no EDSR, fused (convert_checkpoint.py) or not."""
    fused, _ = fuse_checkpoint(torch.load(deconv_edsr_checkpoint[0], weights_only=True))
    torch.save(fused, tmp_path / 'fused.pth')
    for path in (deconv_edsr_checkpoint[0], tmp_path / 'fused.pth'):
        with pytest.raises(spandrel.UnsupportedModelError):
            spandrel.ModelLoader().load_from_file(path)


def test_spandrel_detects_the_exported_checkpoint_and_computes_the_same(deconv_edsr_checkpoint, tmp_path):
    path, network_g = deconv_edsr_checkpoint
    options = write_options(tmp_path / 'net.yml', {'network_g': network_g})
    export.main(['-m', str(path), '--opt', options, '--spandrel', str(tmp_path / 'net_spandrel.pth')])
    model = spandrel.ModelLoader().load_from_file(tmp_path / 'net_spandrel.pth')
    assert model.architecture.id == 'RCAN' and model.scale == 2
    x = torch.rand(2, 3, 15, 12)
    with torch.no_grad():
        expected = load_network(path)(x)
        torch.testing.assert_close(model.model.eval()(x.clone()), expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize('upscale, res_scale, img_range', [(3, 0.1, 1.), (4, 1, 255.)])
def test_spandrel_layout_holds_any_edsr(upscale, res_scale, img_range, tmp_path):
    torch.manual_seed(0)
    edsr = build_network(dict(type='EDSR', num_in_ch=3, num_out_ch=3, num_feat=16, num_block=2, upscale=upscale,
                              res_scale=res_scale, img_range=img_range, rgb_mean=[0.3, 0.5, 0.6])).eval()
    torch.save(spandrel_state_dict(edsr), tmp_path / 'net.pth')
    model = spandrel.ModelLoader().load_from_file(tmp_path / 'net.pth')
    assert model.scale == upscale
    x = torch.rand(1, 3, 11, 13)
    with torch.no_grad():
        torch.testing.assert_close(model.model.eval()(x.clone()), edsr(x), rtol=0, atol=1e-5)


def test_spandrel_layout_refuses_other_networks(tmp_path):
    srcnn = dict(type='SRCNN', num_in_ch=3, num_out_ch=3, upscale=2)
    torch.save({'params': build_network(dict(srcnn)).state_dict()}, tmp_path / 'srcnn.pth')
    options = write_options(tmp_path / 'srcnn.yml', {'network_g': srcnn})
    with pytest.raises(SystemExit, match="error: spandrel's layout holds EDSR networks"):
        export.main(['-m', str(tmp_path / 'srcnn.pth'), '--opt', options, '--spandrel', str(tmp_path / 'out.pth')])
