"""Evaluation statistics: recalibration of FastDeconv's running statistics and DeconvSRModel."""
import copy

import pytest
import torch
from helpers import model_options
from torch import nn

import deconv_basicsr.plugin  # noqa: F401  (BasicSR importable, the archs and the model registered)
from basicsr.models import build_model

from deconv_basicsr.archs.deconv_srcnn_arch import DeconvSRCNN
from deconv_basicsr.layers import FastDeconv
from deconv_basicsr.layers.recalibrate import recalibrate_deconv_stats
from deconv_basicsr.experiments.reference_layer import patch_statistics


def _images(n, c=4, size=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(c, c, generator=g, dtype=torch.float64)
    return torch.einsum('dc,nchw->ndhw', mix, torch.randn(n, c, size, size, generator=g, dtype=torch.float64)) + 1


def test_recalibration_averages_batch_statistics_or_pools_batches_as_one_batch():
    torch.manual_seed(0)
    layer = FastDeconv(4, 3, 3, padding=1, block=2).double()
    x1, x2 = _images(2, seed=1), _images(2, seed=2)
    assert recalibrate_deconv_stats(layer, [x1, x2]) == 2
    stats = [patch_statistics(x, 3, 1, layer.block) for x in (x1, x2)]
    torch.testing.assert_close(layer.running_mean[0], (stats[0][0] + stats[1][0]) / 2)
    torch.testing.assert_close(layer.running_deconv[0], (stats[0][1] + stats[1][1]) / 2)

    recalibrate_deconv_stats(layer, [x1, x2], average='cov')
    # Equal batch sizes sample equally many patches, so pooling them is the concatenated batch.
    mean, deconv = patch_statistics(torch.cat([x1, x2]), 3, 1, layer.block)
    torch.testing.assert_close(layer.running_mean[0], mean)
    torch.testing.assert_close(layer.running_deconv[0], deconv)
    with pytest.raises(ValueError, match='average'):
        recalibrate_deconv_stats(layer, [x1], average='median')


def test_recalibrated_eval_equals_training_output_on_that_batch():
    torch.manual_seed(0)
    net = DeconvSRCNN(num_in_ch=4, num_out_ch=4, num_feat=(8, 8), kernel_size=(5, 3, 3), deconv_layers=(1, 2),
                      block=4).double()
    x = _images(2, seed=3)
    expected = copy.deepcopy(net)(x)  # training mode: each layer whitens with the batch's statistics
    net.eval()
    recalibrate_deconv_stats(net, [x])
    torch.testing.assert_close(net(x), expected)


def test_recalibration_changes_nothing_but_running_statistics():
    torch.manual_seed(0)
    net = nn.Sequential(FastDeconv(4, 4, 3, padding=1, block=2), nn.Dropout(0.5), nn.Conv2d(4, 4, 1)).double()
    net(_images(2))
    net[0].eval()
    before = copy.deepcopy(net.state_dict())
    recalibrate_deconv_stats(net, [_images(2, seed=s) for s in range(3)])
    after = net.state_dict()
    changed = {key for key in after if not torch.equal(after[key], before[key])}
    assert changed == {'0.running_mean', '0.running_deconv'}  # not num_batches_tracked, not parameters
    assert [m.training for m in net] == [False, True, True]
    assert not net[0].__dict__.get('_statistics')
    assert recalibrate_deconv_stats(nn.Conv2d(4, 4, 1), [_images(1)]) == 0


# ---- the instability in miniature ----------------------------------------------------------------------


def _textures(n, size, g):
    """Smooth random RGB images whose brightness and contrast vary from image to image, as crops do."""
    coarse = torch.rand(n, 3, size // 4, size // 4, generator=g)
    img = nn.functional.interpolate(coarse, size=(size, size), mode='bicubic', align_corners=False)
    low = torch.rand(n, 1, 1, 1, generator=g) * 0.6
    contrast = torch.rand(n, 1, 1, 1, generator=g) * 0.4 + 0.05
    return (low + contrast * img).clamp(0, 1)


def _psnr(sr, gt):
    return (10 * torch.log10(1 / (sr.clamp(0, 1) - gt).square().mean())).item()


@pytest.fixture
def one_thread():
    """Tiny tensors: one thread is faster, and not slowed down by other processes on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_running_statistics_swing_while_the_weights_hold_still(one_thread):
    """Tiny DeconvSRCNN, trained on 12x12 LQ crops, validated on 24x24 LQ images.

    After training, the weights stay fixed while training batches keep coming (as between two validations
    of a converged run, magnified). The running statistics follow whichever batches came last, and the
    validation PSNR with them moves by dB although the network does not. Recalibrated on the last 16
    batches (DeconvSRModel's default) it moves far less and lies higher; and two disjoint fixed sets of 16
    batches (``recalibrate_fixed``, as two runs would pick them) agree far better than the running
    statistics do with themselves.
    """
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    net = DeconvSRCNN(num_feat=(16, 16), kernel_size=(5, 3, 3), deconv_layers=(2, ), block=4)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    val_gt = _textures(4, 48, g)
    val_lq = nn.functional.avg_pool2d(val_gt, 2)
    seen = []
    for _ in range(30):
        gt = _textures(8, 24, g)
        seen.append(nn.functional.avg_pool2d(gt, 2))
        optimizer.zero_grad()
        nn.functional.l1_loss(net(seen[-1]), gt).backward()
        optimizer.step()
    running, recent = [], []
    with torch.no_grad():
        for _ in range(6):
            for _ in range(5):  # training-mode forwards only: the running statistics move, the weights do not
                seen.append(nn.functional.avg_pool2d(_textures(8, 24, g), 2))
                net(seen[-1])
            model = copy.deepcopy(net).eval()
            running.append(_psnr(model(val_lq), val_gt))
            recalibrate_deconv_stats(model, seen[-16:])
            recent.append(_psnr(model(val_lq), val_gt))
        fixed = []
        for batches in (seen[:16], seen[16:32]):
            recalibrate_deconv_stats(model, batches)
            fixed.append(_psnr(model(val_lq), val_gt))

    def spread(curve):
        return max(curve) - min(curve)

    assert spread(running) > 3, running
    assert spread(recent) < 0.25 * spread(running), (running, recent)
    assert min(recent) > sum(running) / len(running), (running, recent)
    assert spread(fixed) < 0.25 * spread(running), (running, fixed)


# ---- DeconvSRModel --------------------------------------------------------------------------------------


def _model(tmp_path, ema_decay=0.999, **val):
    network_g = {'type': 'DeconvSRCNN', 'num_in_ch': 3, 'num_out_ch': 3, 'upscale': 2, 'num_feat': [8, 8],
                 'kernel_size': [5, 3, 3], 'deconv_layers': [1, 2], 'block': 4}
    opt = model_options(network_g, 'DeconvSRModel', ema_decay, val=val)
    opt['path'].update(models=str(tmp_path), training_states=str(tmp_path))
    return build_model(opt)


def _train(model, steps, seed=0):
    g = torch.Generator().manual_seed(seed)
    lqs = []
    for step in range(1, steps + 1):
        gt = torch.rand(2, 3, 24, 24, generator=g)
        lqs.append(nn.functional.avg_pool2d(gt, 2))
        model.feed_data({'lq': lqs[-1], 'gt': gt})
        model.optimize_parameters(step)
    return lqs


@pytest.mark.parametrize('fixed', [True, False])
def test_deconv_sr_model_recalibrates_net_and_ema_before_saving(tmp_path, fixed):
    model = _model(tmp_path, recalibrate_batches=3, recalibrate_fixed=fixed)
    assert type(model).__name__ == 'DeconvSRModel'
    lqs = _train(model, 5)
    expected = {}
    for name in ('net_g', 'net_g_ema'):
        net = copy.deepcopy(getattr(model, name))
        # The first (or last) 3 training batches, through that network.
        recalibrate_deconv_stats(net, lqs[:3] if fixed else lqs[-3:])
        expected[name] = net.state_dict()
    model.save(epoch=0, current_iter=5)
    saved = torch.load(tmp_path / 'net_g_5.pth', map_location='cpu')
    for name, key in (('net_g', 'params'), ('net_g_ema', 'params_ema')):
        for buffer in ('conv1.running_mean', 'conv1.running_deconv', 'conv2.running_deconv'):
            torch.testing.assert_close(saved[key][buffer], expected[name][buffer])
    assert not model.recalibrate(), 'no training step since the last recalibration'
    _train(model, 1, seed=1)
    assert model.recalibrate()


def test_deconv_sr_model_options(tmp_path):
    model = _model(tmp_path)
    assert (model.recalibrate_batches, model.recalibrate_fixed, model.recalibrate_average) == (16, False, 'deconv')
    model = _model(tmp_path, recalibrate_batches=0, ema_decay=0)
    _train(model, 2)
    before = copy.deepcopy(model.net_g.state_dict())
    assert not model.recalibrate()
    for key, value in model.net_g.state_dict().items():
        assert torch.equal(value, before[key])
    with pytest.raises(ValueError, match='recalibrate_batches'):
        _model(tmp_path, recalibrate_batches=-1)
    with pytest.raises(ValueError, match='recalibrate_average'):
        _model(tmp_path, recalibrate_average='median')


def _stability_model(tmp_path, **train):
    network_g = {'type': 'DeconvSRCNN', 'num_in_ch': 3, 'num_out_ch': 3, 'upscale': 2, 'num_feat': [8, 8],
                 'kernel_size': [5, 3, 3], 'deconv_layers': [2], 'block': 4}
    opt = model_options(network_g, 'DeconvSRModel', 0)
    opt['train'].update(train)
    opt['path'].update(models=str(tmp_path), training_states=str(tmp_path))
    torch.manual_seed(0)
    return build_model(opt)


def test_deconv_lr_scale_puts_the_deconv_layers_in_a_slower_group(tmp_path):
    plain, scaled = _stability_model(tmp_path), _stability_model(tmp_path, deconv_lr_scale=0.1)
    assert len(plain.optimizer_g.param_groups) == 1
    groups = scaled.optimizer_g.param_groups
    assert [group['lr'] for group in groups] == [1e-3, pytest.approx(1e-4)]
    net = scaled.net_g
    assert {id(p) for p in groups[1]['params']} == {id(net.conv2.weight), id(net.conv2.bias)}
    assert sum(len(group['params']) for group in groups) == len(list(net.parameters()))
    # The schedule (here a warmup) scales both groups alike.
    scaled.update_learning_rate(1, warmup_iter=4)
    assert [group['lr'] for group in groups] == [pytest.approx(2.5e-4), pytest.approx(2.5e-5)]
    # Same start, same batches: only the deconvolved layer's step differs (Adam's first step is about lr).
    _train(plain, 1), _train(scaled, 1)
    step = {name: (p - q).abs().max().item() for (name, p), q in
            zip(scaled.net_g.named_parameters(), _stability_model(tmp_path).net_g.parameters())}
    assert step['conv2.weight'] < 0.2 * step['conv1.weight']


def test_grad_clip_norm_clips_the_total_norm_before_each_step(tmp_path):
    model = _stability_model(tmp_path, grad_clip_norm=1e-3)
    norms = []
    model.optimizer_g.register_step_pre_hook(lambda optimizer, args, kwargs: norms.append(torch.linalg.vector_norm(
        torch.stack([torch.linalg.vector_norm(p.grad) for p in model.net_g.parameters()])).item()))
    _train(model, 3)
    assert norms == [pytest.approx(1e-3, rel=1e-4)] * 3  # these gradients are far larger than 1e-3
    unclipped = _stability_model(tmp_path)
    unclipped.optimizer_g.register_step_pre_hook(lambda optimizer, args, kwargs: norms.append(torch.linalg.vector_norm(
        torch.stack([torch.linalg.vector_norm(p.grad) for p in unclipped.net_g.parameters()])).item()))
    _train(unclipped, 1)
    assert norms[-1] > 1e-2


@pytest.mark.parametrize('key, value', [('grad_clip_norm', 0), ('grad_clip_norm', 'big'), ('deconv_lr_scale', None),
                                        ('deconv_lr_scale', -1), ('deconv_lr_scale', True)])
def test_bad_stability_options_are_named(tmp_path, key, value):
    with pytest.raises(ValueError, match=f'train.{key}'):
        _stability_model(tmp_path, **{key: value})


def test_deconv_sr_model_validates_the_moving_averages_first(tmp_path):
    from basicsr.data import build_dataloader, build_dataset
    from basicsr.metrics import calculate_psnr
    from basicsr.utils import tensor2img
    from helpers import write_image_pairs

    gt_dir, lq_dir = write_image_pairs(tmp_path / 'data', num_images=2, size=24)
    metrics = {'psnr': {'type': 'calculate_psnr', 'crop_border': 2, 'test_y_channel': False}}
    model = _model(tmp_path, ema_decay=0, recalibrate_batches=2, validate_running_stats=True, metrics=metrics,
                   save_img=False)
    lqs = _train(model, 4)
    dataset_opt = dict(name='tiny_val', type='PairedImageDataset', dataroot_gt=gt_dir, dataroot_lq=lq_dir,
                       io_backend=dict(type='disk'), phase='val', scale=2)
    loader = build_dataloader(build_dataset(dataset_opt), dataset_opt, num_gpu=0, dist=False)

    def psnr(net):
        net.eval()
        values = []
        with torch.no_grad():
            for data in loader:
                out = tensor2img(net(data['lq']).clamp(0, 1))
                values.append(calculate_psnr(out, tensor2img(data['gt']), crop_border=2))
        return sum(values) / len(values)

    moving = copy.deepcopy(model.net_g)
    recalibrated = copy.deepcopy(model.net_g)
    recalibrate_deconv_stats(recalibrated, lqs[-2:])
    expected = {'tiny_val_running': psnr(moving), 'tiny_val': psnr(recalibrated)}
    assert abs(expected['tiny_val_running'] - expected['tiny_val']) > 1e-3, 'the test needs the two to differ'

    # BasicSR saves (which recalibrates) before it validates.
    model.save(epoch=0, current_iter=4)
    model.validation(loader, current_iter=4, tb_logger=None)
    assert loader.dataset.opt['name'] == 'tiny_val'
    after = recalibrated.state_dict()
    assert all(torch.equal(value, after[key]) for key, value in model.net_g.state_dict().items()), \
        'the network keeps the recalibrated statistics'
    for name, value in expected.items():
        assert model.best_metric_results[name]['psnr']['val'] == pytest.approx(value, abs=1e-6)
    with pytest.raises(ValueError, match='validate_running_stats'):
        _model(tmp_path, validate_running_stats='yes')
