"""The stability probe: it records what it says, and training under it is DeconvSRModel's bit for bit."""
import copy
import csv
import math

import pytest
import torch
from helpers import model_options

import deconv_basicsr.plugin  # noqa: F401  (BasicSR importable, the archs and the model registered)
from basicsr.models import build_model

from deconv_basicsr.experiments import mechanism
from deconv_basicsr.experiments.mechanism import FIELDS, first_fall  # registers ProbedSRModel

NETWORK = {'type': 'DeconvSRCNN', 'num_in_ch': 3, 'num_out_ch': 3, 'upscale': 2, 'num_feat': [8, 8],
           'kernel_size': [5, 3, 3], 'deconv_layers': [2], 'block': 4}


def _train(model, steps=3):
    g = torch.Generator().manual_seed(0)
    for step in range(1, steps + 1):
        gt = torch.rand(2, 3, 24, 24, generator=g)
        model.feed_data({'lq': torch.nn.functional.avg_pool2d(gt, 2), 'gt': gt})
        model.optimize_parameters(step)


@pytest.mark.parametrize('network', [NETWORK, {**NETWORK, 'type': 'SRCNN', 'deconv_layers': None, 'block': None}])
def test_probe_records_every_step_and_leaves_training_unchanged(tmp_path, network):
    network = {k: v for k, v in network.items() if v is not None}
    opt = model_options(network, 'DeconvSRModel', ema_decay=0)
    torch.manual_seed(0)
    plain = build_model(copy.deepcopy(opt))
    opt.update(model_type='ProbedSRModel', probe={'layers': ['conv2', 'conv1'], 'deconv': {'block': 4},
                                                  'csv': str(tmp_path / 'probe.csv')})
    torch.manual_seed(0)
    probed = build_model(opt)
    _train(plain)
    _train(probed)
    for key, value in plain.net_g.state_dict().items():
        assert torch.equal(probed.net_g.state_dict()[key], value), key
    with open(tmp_path / 'probe.csv') as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == FIELDS
    assert [(r['iter'], r['layer']) for r in rows] == [(str(i), name) for i in (1, 2, 3) for name in ('conv2', 'conv1')]
    for row in rows:
        assert float(row['cond']) >= 1 and float(row['deconv_norm']) > 0 and float(row['grad_norm']) > 0
        assert float(row['loss']) > 0 and float(row['lr']) == 1e-3
    # A plain layer applies its own kernel; a deconvolved one the folded kernel, another tensor.
    conv2 = [r for r in rows if r['layer'] == 'conv2']
    same = [r['kernel_norm'] == r['folded_norm'] for r in conv2]
    assert all(same) if network['type'] == 'SRCNN' else not any(same)


def test_first_fall():
    assert first_fall([(20, 25.0), (40, 26.0), (60, 25.5), (80, 24.9), (100, 27.0)]) == 80
    assert first_fall([(20, 25.0), (40, 26.0)]) is None


def test_condition_number_is_infinite_for_a_singular_covariance():
    well = torch.diag(torch.tensor([4.0, 2.0, 1.0]))
    assert mechanism.condition_number(torch.stack([well, 2 * torch.eye(3)])) == pytest.approx(4.0)
    # A singular covariance computed in float32 can have a slightly negative smallest eigenvalue: no ratio of
    # eigenvalues describes it (the ratio would be negative), and one such group makes the layer's inf.
    rounded = torch.diag(torch.tensor([3.0, 1.0, -1e-6]))
    assert mechanism.condition_number(torch.stack([well, rounded])) == math.inf
    assert mechanism.condition_number(torch.zeros(1, 3, 3)) == math.inf


def test_gradient_totals_give_each_arm_and_seed_the_median_90th_percentile_and_largest():
    steps = [{'arm': arm, 'seed': 0, 'iter': it, 'grad_total': value * scale}
             for arm, scale in (('srcnn', 1), ('dsrcnn_c2', 10)) for it, value in enumerate(range(1, 11), 1)]
    lines = mechanism.gradient_totals(steps, [0, 1], ['srcnn', 'dsrcnn_c2'])
    # 1..10: median 5.5, 90th percentile 9.1 (within the values, interpolated), largest 10; seed 1 has no steps.
    assert lines[-2:] == ['| SRCNN | 0 | 10 | 5.5 | 9.1 | 10 |', '| DeconvSRCNN (conv2) | 0 | 10 | 55 | 91 | 100 |']
