"""What the research studies share: images in memory, random crops, Y-PSNR, lockstep training, timing."""
import time

import cv2
import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from basicsr.metrics import calculate_psnr

from deconv_basicsr.prepare import prepare_benchmark
from deconv_basicsr.experiments.inprocess import (Lockstep, RandomCrops, load_pairs, mean_psnr, seeded, train_step,
                                                  y_psnr)
from deconv_basicsr.experiments.timing import side_by_side, step_seconds


def _bgr(tensor):
    """(3, h, w) RGB in [0, 1] -> (h, w, 3) uint8 BGR."""
    return (tensor.permute(1, 2, 0).flip(-1) * 255).round().byte().numpy()


def test_pairs_are_the_prepared_benchmark_images(tmp_path):
    img = np.random.default_rng(0).integers(0, 256, (23, 30, 3), dtype=np.uint8)  # odd height: mod-cropped
    (tmp_path / 'hr').mkdir()
    cv2.imwrite(str(tmp_path / 'hr' / 'a.png'), img)
    gt_dir, lr_dir = prepare_benchmark(str(tmp_path / 'hr'), str(tmp_path / 'bench'), scales=(2, ))[2]

    (lq, gt), = load_pairs(str(tmp_path / 'hr'), 2)
    assert np.array_equal(_bgr(gt), cv2.imread(f'{gt_dir}/a.png')) and gt.shape == (3, 22, 30)
    assert np.array_equal(_bgr(lq), cv2.imread(f'{lr_dir}/a.png')) and lq.shape == (3, 11, 15)
    (lq, gt), = load_pairs(str(tmp_path / 'hr'), 2, crop=16)
    assert np.array_equal(_bgr(gt), img[3:19, 7:23]) and lq.shape == (3, 8, 8)


def test_crops_are_aligned_and_augmented():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(3, 20, 24, generator=g), torch.rand(3, 16, 16, generator=g)
    pairs = [(F.avg_pool2d(gt, 2), gt) for gt in images]
    crops = RandomCrops(pairs, gt_size=8, scale=2, batch_size=4, seed=0)
    plain = RandomCrops(pairs, gt_size=8, scale=2, batch_size=4, seed=0, augment=False)
    windows = {tuple(lq[:, i:i + 4, j:j + 4].flatten().tolist()) for lq, _ in pairs
               for i in range(lq.shape[1] - 3) for j in range(lq.shape[2] - 3)}
    unmoved = []
    for sampler in (crops, plain):
        for _ in range(10):
            lq, gt = sampler()
            assert lq.shape == (4, 3, 4, 4) and gt.shape == (4, 3, 8, 8)
            # Average pooling commutes with flips and transposes: aligned crops stay aligned when augmented.
            torch.testing.assert_close(F.avg_pool2d(gt, 2), lq)
            unmoved += [tuple(x.flatten().tolist()) in windows for x in lq]
    assert all(unmoved[40:]) and not all(unmoved[:40])  # without augmentation every crop is a window
    with pytest.raises(ValueError, match='smaller than the crop'):
        RandomCrops(pairs, gt_size=18, scale=2, batch_size=1, seed=0)


def test_y_psnr_is_basicsr_psnr_on_the_y_channel():
    g = torch.Generator().manual_seed(0)
    gt = (torch.rand(3, 20, 18, generator=g) * 255).round() / 255
    sr = (gt + 0.05 * torch.randn(3, 20, 18, generator=g)).clamp(0, 1)
    expected = calculate_psnr(_bgr(sr), _bgr(gt), crop_border=2, test_y_channel=True)
    assert y_psnr(sr, gt, 2) == pytest.approx(expected, abs=1e-4)
    assert y_psnr(sr, gt, 0) != pytest.approx(expected, abs=1e-3)  # the border counts


def test_mean_psnr_of_a_model_off_by_ten_grey_levels():
    lq = torch.rand(2, 3, 6, 6) * 0.5
    pairs = [(x, F.interpolate(x[None], scale_factor=2)[0]) for x in lq]
    model = nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(3, 3, 1))
    with torch.no_grad():
        model[1].weight.copy_(torch.eye(3).view(3, 3, 1, 1))
        model[1].bias.fill_(10 / 255)
    # Y moves by 10 * (65.481 + 128.553 + 24.966) / 255 everywhere.
    assert mean_psnr(model, pairs, 2) == pytest.approx(20 * np.log10(255 / (10 * 219 / 255)), abs=1e-6)
    model[1].bias.data.zero_()
    assert mean_psnr(model, pairs, 2) == float('inf')


def _net():
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 3, 3, padding=1))


def test_train_step_and_lockstep():
    torch.manual_seed(0)
    lq, gt = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    net = _net().eval()
    before = [p.clone() for p in net.parameters()]
    expected = F.l1_loss(net(lq), gt)
    loss = train_step(net, torch.optim.SGD(net.parameters(), lr=0.1), lq, gt)
    assert net.training and torch.equal(loss, expected.detach())
    assert all(not torch.equal(a, b) for a, b in zip(before, net.parameters()))

    # Networks built alike and trained in lockstep stay alike; a third one, seeded differently, does not.
    trainer = Lockstep({'a': seeded(_net, 1), 'b': seeded(_net, 1), 'c': seeded(_net, 2)}, lr=1e-2)
    for _ in range(3):
        losses = trainer.step(lq, gt)
        assert losses['a'] == losses['b'] != losses['c']
    a, b = (trainer.networks[name].state_dict() for name in 'ab')
    assert all(torch.equal(a[key], b[key]) for key in a)
    assert all(seconds > 0 for seconds in trainer.seconds.values())


def test_side_by_side_runs_tasks_in_turn_and_times_them():
    calls = []
    times = side_by_side({'a': lambda: calls.append('a'), 'b': lambda: (calls.append('b'), time.sleep(0.01))},
                         rounds=3, warmup=2)
    assert calls == ['a', 'b'] * 5
    # A lower bound only: how long 'a' takes on a busy machine is not the test's to bound.
    assert len(times['a']) == len(times['b']) == 3 and min(times['b']) >= 0.01

    nets = {'a': _net(), 'b': _net()}
    before = {name: [p.clone() for p in net.parameters()] for name, net in nets.items()}
    seconds = step_seconds(nets, (torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)), rounds=2, steps=2)
    assert set(seconds) == {'a', 'b'} and all(s > 0 for s in seconds.values())
    assert all(not torch.equal(p, q) for name in nets for p, q in zip(before[name], nets[name].parameters()))
