"""The evaluation statistics and fast mode studies: their estimates, and both scripts on a tiny dataset."""
import copy
import csv
import statistics
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from helpers import check_python

from deconv_basicsr.archs.deconv_srcnn_arch import DeconvSRCNN
from deconv_basicsr.experiments import fast_mode
from deconv_basicsr.experiments.eval_stats import (EvalStatsRun, Settings, ShadowEstimates, psnr_with_own_statistics,
                                                   read_output, seeds_summary)
from deconv_basicsr.experiments.inprocess import load_pairs, mean_psnr, train_step

SCRIPTS = Path(__file__).resolve().parents[2] / 'scripts'


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    """T91/ and Set5/ of a few smooth random images."""
    root = tmp_path_factory.mktemp('data')
    rng = np.random.default_rng(0)
    for folder, count, size in (('T91', 3, 52), ('Set5', 2, 30)):
        (root / folder).mkdir()
        for i in range(count):
            coarse = rng.uniform(0, 255, (size // 4, size // 4, 3)).astype(np.float32)
            img = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
            cv2.imwrite(str(root / folder / f'{i}.png'), np.clip(img, 0, 255).astype(np.uint8))
    return root


def _tiny_deconv_srcnn():
    torch.manual_seed(0)
    return DeconvSRCNN(num_feat=(8, 8), kernel_size=(5, 3, 3), deconv_layers=(2, ), block=4)


def test_shadow_estimates_see_the_batches_the_layer_trains_on():
    net = _tiny_deconv_srcnn()
    layer = net.conv2
    shadows = ShadowEstimates(net)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    lq = torch.rand(2, 3, 10, 10)
    with shadows.feeding():
        train_step(net, optimizer, lq, torch.rand(2, 3, 20, 20))
        running_mean, running_deconv = (b.double().clone() for b in (layer.running_mean, layer.running_deconv))
        net.eval()(lq)  # eval forwards feed nothing
    net.train()(lq)  # nor forwards outside
    assert not torch.equal(layer.running_mean.double(), running_mean)  # that forward was a training one
    # From the layer's start (0, I), one step with the layer's momentum (0.1) and one with 0.01.
    (mean, cov), = shadows.cov
    torch.testing.assert_close(mean, running_mean)
    (slow_mean, slow_deconv), = shadows.slow
    eye = torch.eye(layer.num_features, dtype=torch.float64)
    torch.testing.assert_close(slow_mean, running_mean / 10)
    torch.testing.assert_close(slow_deconv - 0.99 * eye, (running_deconv - 0.9 * eye) / 10)
    (_, deconv), = shadows.statistics('emaCov')
    torch.testing.assert_close(deconv, layer.whitening(cov))


def test_own_statistics_whiten_every_image_with_its_own_and_change_nothing():
    net = _tiny_deconv_srcnn()
    pairs = [(torch.rand(3, 8, 8), torch.rand(3, 16, 16)) for _ in range(2)]
    before = copy.deepcopy(net.state_dict())
    psnr = psnr_with_own_statistics(net, pairs)
    assert not net.training and not net.conv2.training
    assert all(torch.equal(value, net.state_dict()[key]) for key, value in before.items())
    # The same as a throw-away copy in training mode, which whitens each input with its own statistics.
    assert psnr == pytest.approx(mean_psnr(copy.deepcopy(net).train(), pairs, 2))
    assert psnr != pytest.approx(mean_psnr(net, pairs, 2))  # the running statistics (0, I) differ


def test_eval_stats_script(data):
    result = check_python([str(SCRIPTS / 'eval_stats_study.py'), '--data', str(data), '--iters', '4', '--val-every',
                           '2', '--batch-size', '2', '--gt-size', '16', '--recal', '1', '2', '--recal-fixed', '1', '2',
                           '--final-recal', '1', '2', '--sets', '2', '--threads', '1'], timeout=120)
    lines = result.stdout.splitlines()
    summary = lines[lines.index(next(line for line in lines if line.startswith('estimate'))):]
    labels = {line.split('  ')[0] for line in summary[1:summary.index('')]}
    assert labels == {'baseline', 'running', 'emaD m=0.01', 'emaCov', 'recal 1', 'recal 2', 'fixed 1', 'fixed 2',
                      'fixed 2 avgD', 'recal 1 avgD', 'recal 2 avgD', 'baseline ema', 'ema recal 1 avgD',
                      'ema recal 2 avgD', 'own', 'val pooled'}
    assert 'recalibrated on   2 fresh batches, 2 disjoint sets' in result.stdout
    assert 'recalibrated mean, running D' in result.stdout


def test_eval_stats_trains_both_networks_at_the_given_learning_rate():
    pairs = [(torch.rand(3, 8, 8), torch.rand(3, 16, 16))]
    run = EvalStatsRun(pairs, pairs, Settings(lr=3e-3, estimates=('baseline', 'avgD')), log=lambda line: None)
    assert {name: opt.param_groups[0]['lr'] for name, opt in run.trainer.optimizers.items()} == {
        'deconv': 3e-3, 'baseline': 3e-3}


def test_eval_stats_summary_of_saved_outputs_pairs_the_seeds(tmp_path):
    # Two saved outputs in the script's format: 'b' ends 1 dB (seed 0) and 2 dB (seed 1) below 'emaD m=0.01'.
    paths = []
    for seed, gap in enumerate((1.0, 2.0)):
        path = tmp_path / f'seed{seed}.txt'
        path.write_text('# command\niter 100 ...\n\n'
                        'estimate             best  final late swing   PSNR every 50 iters\n'
                        f'emaD m=0.01         30.00  30.00      0.000   29.00 28.00 30.00\n'
                        f'recal 16 avgD       30.00  {30 - gap:.2f}      0.000   30.00 29.00 {30 - gap:.2f}\n'
                        '\ndistance to "recal 16" ...\n')
        paths.append(str(path))
    outputs = [read_output(path) for path in paths]
    assert outputs[1] == {'emaD m=0.01': [(50, 29.0), (100, 28.0), (150, 30.0)],
                          'recal 16 avgD': [(50, 30.0), (100, 29.0), (150, 28.0)]}
    summary = seeds_summary(outputs, [('recal 16 avgD', 'emaD m=0.01')])
    assert '| emaD m=0.01 | 30.00 | 30.00 | 2.00 | 1.00 |' in summary  # best, final, late swing, worst fall
    half = 12.706 * statistics.stdev([-1.0, -2.0]) / 2 ** 0.5  # t(1)
    assert (f'| recal 16 avgD − emaD m=0.01 | +0.00 ± 0.00 (+0.00, +0.00) | -1.50 ± {half:.2f} (-1.00, -2.00) |'
            in summary)
    result = check_python([str(SCRIPTS / 'eval_stats_study.py'), '--summarize', *paths, '--compare', 'recal 16 avgD',
                           'emaD m=0.01'], timeout=60)
    assert result.stdout == summary


def test_eval_stats_script_validates_on_centre_crops_of_another_set(data):
    result = check_python([str(SCRIPTS / 'eval_stats_study.py'), '--data', str(data), '--val-set', 'T91',
                           '--val-images', '2', '--val-crop', '24', '--iters', '2', '--val-every', '2',
                           '--batch-size', '2', '--gt-size', '16', '--estimates', 'baseline', 'running',
                           '--final-recal', '1', '--sets', '1', '--threads', '1'], timeout=120)
    assert 'data: 3 training and 2 validation pairs' in result.stdout
    pairs = load_pairs(data / 'T91', 2, crop=24, count=2)
    assert [tuple(hr.shape) for _, hr in pairs] == [(3, 24, 24)] * 2 and tuple(pairs[0][0].shape) == (3, 12, 12)


def test_fast_mode_script(data, tmp_path):
    out = tmp_path / 'fast'
    check_python([str(SCRIPTS / 'fast_mode_study.py'), '--data', str(data), '--out', str(out), '--networks', 'SRCNN',
                  '--seeds', '0', '1', '--steps', '4', '--eval-every', '2', '--batch', '2'], timeout=120)
    with open(out / 'curves.csv') as f:
        rows = list(csv.DictReader(f))
    variants = ['plain', 'exact', 'fast (stats_period=8)']
    assert [(r['seed'], r['step'], r['variant']) for r in rows] == [
        (seed, step, v) for seed in '01' for step in '24' for v in variants]
    assert all(5 < float(r['psnr']) < 60 and float(r['seconds']) > 0 for r in rows)
    summary = (out / 'summary.md').read_text()
    final = [float(r['psnr']) for r in rows if r['step'] == '4' and r['variant'] == 'exact']
    assert '| 4 | ' in summary and f'({min(final):.2f}-{max(final):.2f})' in summary


def test_fast_mode_summary_means_over_seeds():
    settings = fast_mode.Settings(steps=4, eval_every=2)
    rows = [dict(network='SRCNN', seed=seed, variant=v, step=step, train_loss=0.1 * seed + step, psnr=20 + seed + step,
                 seconds=step) for seed in (0, 1) for step in (2, 4) for v in ('plain', 'exact')]
    text = fast_mode.summary(rows, settings)
    assert '| 2 | 22.50 | 22.50 |' in text and '| 4 | 24.50 (24.00-25.00) | 24.50 (24.00-25.00) |' in text
    assert '| 4 | 4.0500 (4.0000-4.1000) |' in text and 'Time (s): plain 4, exact 4' in text
