"""The study script's smoke preset end to end: both pairs trained through BasicSR, curves, plots, resume."""
import csv
import os
from pathlib import Path

from helpers import check_python

from deconv_basicsr.study import PRESETS, arm_name, late_swing, network_options

STUDY = str(Path(__file__).resolve().parents[1] / 'scripts' / 'study.py')


def test_srcnn_conv2_pair_shares_the_srcnn_baseline_and_builds():
    from basicsr.utils.registry import ARCH_REGISTRY
    assert arm_name('cpu', 'srcnn_conv2', 'baseline') == arm_name('cpu', 'srcnn', 'baseline')
    assert network_options('cpu', 'srcnn_conv2', 'baseline') == network_options('cpu', 'srcnn', 'baseline')
    net = network_options('smoke', 'srcnn_conv2', 'deconv')
    model = ARCH_REGISTRY.get(net.pop('type'))(**net)
    assert [type(m).__name__ for m in (model.conv1, model.conv2, model.conv3)] == ['Conv2d', 'FastDeconv', 'Conv2d']
    assert model.conv2.block == 16


def test_late_swing_is_the_median_change_over_the_second_half():
    curve = list(enumerate([20.0, 25.0, 30.0, 31.5, 31.0, 31.4]))  # second half: 31.5, 31.0, 31.4
    assert abs(late_swing(curve) - 0.45) < 1e-12
    assert late_swing(curve[:2]) != late_swing(curve[:2])  # NaN: too few validations


def test_smoke_study_writes_curves_plots_summary_and_resumes(tmp_path):
    out = tmp_path / 'study'
    check_python([STUDY, '--preset', 'smoke', '--out', str(out)], cwd=tmp_path)

    smoke = PRESETS['smoke']
    expected_iters = list(range(smoke['val_freq'], smoke['iters'] + 1, smoke['val_freq']))
    with open(out / 'curves.csv') as f:
        rows = list(csv.DictReader(f))
    for pair, networks in (('edsr', ('EDSR', 'DeconvEDSR')), ('srcnn', ('SRCNN', 'DeconvSRCNN'))):
        for arm, network in zip(('baseline', 'deconv'), networks):
            curve = [r for r in rows if r['pair'] == pair and r['arm'] == arm]
            assert [int(r['iter']) for r in curve] == expected_iters, (pair, arm)
            assert all(r['network'] == network and 5 < float(r['psnr_Embedded_valid_y']) < 60 for r in curve)
        assert (out / f'{pair}.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    summary = (out / 'summary.md').read_text()
    assert '| EDSR / DeconvEDSR |' in summary and '| SRCNN / DeconvSRCNN |' in summary

    # An arm interrupted after its last checkpoint resumes from its training state instead of starting over.
    name = arm_name('smoke', 'srcnn', 'deconv')
    os.remove(out / 'experiments' / name / 'models' / 'net_g_latest.pth')
    log = out / 'logs' / f'{name}.log'
    before = log.read_text()
    result = check_python([STUDY, '--preset', 'smoke', '--out', str(out)], cwd=tmp_path)
    resumed = log.read_text()[len(before):]
    assert 'Resuming training from epoch' in resumed
    assert (out / 'experiments' / name / 'models' / 'net_g_latest.pth').exists()
    for other in ('edsr_baseline', 'edsr_deconv', 'srcnn_baseline'):
        other_log = out / 'logs' / f"{arm_name('smoke', *other.split('_'))}.log"
        assert 'Resuming' not in other_log.read_text(), 'a finished arm was run again'
    assert '| SRCNN / DeconvSRCNN |' in result.stdout
