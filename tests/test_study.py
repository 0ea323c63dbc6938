"""The study: statistics and choices on known curves, the design's pairing, and the smoke preset end to end
(sweep, seeds, aggregation, final table, resume) through BasicSR."""
import csv
import json
import math
import os
import shutil
import statistics
from pathlib import Path

import pytest
import torch
import yaml
from helpers import check_python

import deconv_basicsr  # noqa: F401  (registers the archs)
from basicsr.archs import build_network

from deconv_basicsr.experiments import curves as cv
from deconv_basicsr.experiments import recal_noise
from deconv_basicsr.experiments.design import PRESETS, Run, network_options
from deconv_basicsr.experiments.report import write_record
from deconv_basicsr.experiments.runner import is_finished
from deconv_basicsr.experiments.study import best_lr, seed_runs, top_variants

STUDY = str(Path(__file__).resolve().parents[1] / 'scripts' / 'study.py')
TRAINING = ('screen', 'seeds', 'sweep_seeds')  # the smoke preset's training stages


def test_interval_and_verdicts():
    mean, half = cv.interval95([0.1, 0.3, 0.2])  # sd 0.1, t(2) = 4.303
    assert mean == pytest.approx(0.2) and half == pytest.approx(4.303 * 0.1 / math.sqrt(3))
    assert cv.verdict(0.5, 0.2, +1) == 'reproduced' and cv.verdict(0.5, 0.2, -1) == 'contradicted'
    assert cv.verdict(-0.5, 0.2, -1) == 'reproduced' and cv.verdict(-0.5, 0.2, +1) == 'contradicted'
    assert cv.verdict(0.1, 0.2, +1) == 'inconclusive at this scale'
    assert cv.verdict(0.5, math.nan, +1).startswith('inconclusive')


def test_curve_statistics():
    curve = [(100, 30.0), (200, 32.0), (300, 31.0), (400, 33.0), (500, 33.02)]
    assert cv.first_reaching(curve, 32.5) == 400 and cv.first_reaching(curve, 40) is None
    assert cv.worst_drop(curve) == pytest.approx(1.0)
    assert cv.late_gain(curve) == pytest.approx(0.02)  # from iteration 400 (80% of 500) to 500
    mean, sd = cv.mean_curve([curve, [(it, v + 1) for it, v in curve[:4]]])
    assert [it for it, _ in mean] == [100, 200, 300, 400]  # iterations both share
    assert mean[0] == (100, 30.5) and sd[0][1] == pytest.approx(math.sqrt(0.5))


def _records(finals):
    """Records whose curves end at the given PSNR: ``{(arm, lr, seed): final}``."""
    return {Run('srcnn', arm, lr, seed): [(100, final - 1, 0.1), (200, final, 0.1)]
            for (arm, lr, seed), final in finals.items()}


def test_variants_and_learning_rates_are_chosen_on_validation_finals():
    preset = PRESETS['cpu']
    records = _records({
        ('srcnn', 1e-3, 0): 33.0, ('srcnn', 3e-4, 0): 32.0, ('srcnn', 1e-4, 0): 31.0,
        ('dsrcnn_c2', 1e-3, 0): 30.0, ('dsrcnn_c2', 3e-4, 0): 33.5,
        ('dsrcnn_c12', 1e-4, 0): 32.5, ('dsrcnn_c123', 1e-3, 0): 20.0, ('dsrcnn_c12_same', 3e-4, 0): 32.9,
    })
    assert top_variants(preset, records, 'srcnn') == ['dsrcnn_c2', 'dsrcnn_c12_same']
    assert best_lr(preset, records, 'srcnn', 'dsrcnn_c2') == 3e-4
    # Seeds first at the rates the comparisons rest on (the carried arms' screened best), then the others;
    # a family not screened yet (EDSR here) has no such rates.
    runs, sweep = seed_runs(preset, records), seed_runs(preset, records, sweep=True)
    assert {(run.arm, run.lr) for run in runs} == {(arm, lr) for arm in ('srcnn', 'dsrcnn_c2', 'dsrcnn_c12_same')
                                                   for lr in (1e-3, 3e-4)}
    assert {(run.arm, run.lr) for run in sweep} == {
        *((arm, 1e-4) for arm in ('srcnn', 'dsrcnn_c2', 'dsrcnn_c12_same')),
        *((arm, lr) for arm in ('edsr', 'dedsr') for lr in (1e-4, 5e-4))}
    assert {run.seed for run in runs + sweep} == {1, 2} and len(runs + sweep) == 3 * 3 * 2 + 2 * 2 * 2
    # The mean over seeds decides, not seed 0 alone.
    records.update(_records({('dsrcnn_c2', 3e-4, 1): 30.0, ('dsrcnn_c2', 1e-3, 1): 34.0}))
    assert best_lr(preset, records, 'srcnn', 'dsrcnn_c2') == 1e-3


@pytest.mark.parametrize('arm', ['dsrcnn_c2', 'dsrcnn_c12', 'dsrcnn_c123', 'dsrcnn_c12_same'])
def test_both_arms_of_a_pair_start_from_the_same_weights(arm):
    preset = PRESETS['cpu']
    torch.manual_seed(0)
    baseline = build_network(network_options(preset, 'srcnn'))
    torch.manual_seed(0)
    deconv = build_network(network_options(preset, arm))
    for name, value in baseline.state_dict().items():
        assert torch.equal(deconv.state_dict()[name], value), name
    if 1 in network_options(preset, arm)['deconv_layers']:  # conv1, the input layer
        expected = (5, False) if arm.endswith('same') else (15, True)
        assert (deconv.conv1.n_iter, deconv.conv1.freeze) == expected


def test_smoke_study_sweeps_seeds_aggregates_tests_and_resumes(tmp_path):
    out = tmp_path / 'study'
    check_python([STUDY, '--preset', 'smoke', '--out', str(out)], cwd=tmp_path)
    smoke = PRESETS['smoke']
    with open(out / 'curves.csv') as f:
        rows = list(csv.DictReader(f))
    runs = {(r['arm'], float(r['lr']), int(r['seed'])) for r in rows}
    assert runs == {(arm, lr, seed) for arm in ('srcnn', 'dsrcnn_c2') for lr in smoke.lrs['srcnn'] for seed in (0, 1)}
    assert all(5 < float(r['psnr']) < 60 for r in rows)
    assert len(rows) == len(runs) * smoke.iters['srcnn'] // smoke.val_freq
    with open(out / 'table.csv') as f:
        table = list(csv.DictReader(f))
    assert {r['method'] for r in table} == {'Bicubic', 'SRCNN', 'DeconvSRCNN conv2'}
    assert all(r['seeds'] == '2' for r in table if r['method'] != 'Bicubic')
    summary = (out / 'summary.md').read_text()
    assert '| DeconvSRCNN conv2 | 0.001 / 0.001 (shared' in summary and '## Final test' in summary
    assert (out / 'srcnn_best.png').read_bytes()[:4] == b'\x89PNG'
    assert set(json.loads((out / 'timing.json').read_text())['seconds_per_iter']) == {
        'srcnn', 'dsrcnn_c2'}

    # The runs' dataset folders are relative to the study folder, so the folder works after a move: the probe
    # below reads BasicSR's copy of a run's options, and the resume further down trains in the moved folder.
    for option_file in (out / 'options').iterdir():
        datasets = yaml.safe_load(option_file.read_text())['datasets'].values()
        assert all(not os.path.isabs(d[key]) for d in datasets for key in ('dataroot_gt', 'dataroot_lq'))
    shutil.move(out, tmp_path / 'moved')
    out = tmp_path / 'moved'

    # The evaluation-noise probe on a finished deconv run: every checkpoint, each count, each disjoint set.
    name = Run('srcnn', 'dsrcnn_c2', 1e-3, 0).name
    rows = recal_noise.probe_run(out, name, counts=(1, 2), sets=2, log=lambda line: None)
    iterations = [it for it, _ in recal_noise.checkpoints(out, name)]
    assert iterations == list(range(smoke.val_freq, smoke.iters['srcnn'] + 1, smoke.val_freq))
    assert sorted((it, n, k) for _, it, n, k, _ in rows) == [(it, n, k) for it in iterations for n in (1, 2)
                                                             for k in (0, 1)]
    assert all(5 < psnr < 60 for *_, psnr in rows)
    # Different batches give different statistics, hence different outputs of the same weights.
    assert len({psnr for _, it, _, _, psnr in rows if it == iterations[-1]}) > 1
    # Beside a made-up record: this run recorded 20 dB throughout, its baseline 18 dB.
    records = {Run('srcnn', 'dsrcnn_c2', 1e-3, 0): [(it, 20.0, 0.1) for it in iterations],
               Run('srcnn', 'srcnn', 1e-3, 0): [(it, 18.0, 0.1) for it in iterations]}
    smoke_batches = smoke.recalibrate_batches
    assert recal_noise.recorded_statistics(out, name) == f"the run's last {smoke_batches} batches"
    assert recal_noise.recorded_statistics(out, 'not_a_run') is None
    table = recal_noise.summary(rows, records, {name: recal_noise.recorded_statistics(out, name)})
    assert f"| {name} | recorded (the run's last {smoke_batches} batches) | | 20.00 | 0.00 |" in table
    assert f'| {name} | recorded | | 20.00 |' in recal_noise.summary(rows, records)
    assert f'| {name} | 2 fresh batches, mean of 2 sets |' in table
    final = statistics.fmean(psnr for _, it, n, _, psnr in rows if (it, n) == (iterations[-1], 2))
    assert f'| dsrcnn_c2 | 0.001 | 1 | +2.00 ± nan | {final - 18:+.2f} ± nan |' in table

    # A run interrupted after its last checkpoint (not finished, not in the record) resumes from its training
    # state; finished ones are skipped.
    name = Run('srcnn', 'dsrcnn_c2', 1e-3, 1).name
    os.remove(out / 'experiments' / name / 'models' / 'net_g_latest.pth')
    lines = (out / 'curves.csv').read_text().splitlines(keepends=True)
    (out / 'curves.csv').write_text(''.join(line for line in lines if not line.startswith(name + ',')))
    before = {log.name: log.read_text() for log in (out / 'logs').iterdir()}
    check_python([STUDY, '--preset', 'smoke', '--out', str(out), '--stages', *TRAINING], cwd=tmp_path)
    grown = [log.name for log in (out / 'logs').iterdir() if log.read_text() != before[log.name]]
    assert grown == [f'{name}.log']
    assert 'Resuming training from epoch' in (out / 'logs' / f'{name}.log').read_text()[len(before[f'{name}.log']):]

    # On a machine with the committed record but without the runs, what the record holds is not trained again.
    shutil.rmtree(out / 'experiments')
    shutil.rmtree(out / 'tb_logger')
    rows_before = (out / 'curves.csv').read_text()
    before = {log.name: log.read_text() for log in (out / 'logs').iterdir()}
    check_python([STUDY, '--preset', 'smoke', '--out', str(out), '--stages', *TRAINING], cwd=tmp_path)
    assert all(log.read_text() == before[log.name] for log in (out / 'logs').iterdir())
    assert (out / 'curves.csv').read_text() == rows_before


def test_a_run_started_for_another_number_of_iterations_is_neither_counted_nor_resumed(tmp_path):
    folder = tmp_path / 'experiments' / 'edsr_lr0.0005_s0'
    (folder / 'models').mkdir(parents=True)
    # BasicSR's copy of the options, with the comment lines it writes at the top.
    (folder / 'edsr_lr0.0005_s0.yml').write_text('# GENERATE TIME: now\n\ntrain:\n  total_iter: 2000\n')
    assert not is_finished(tmp_path, 'edsr_lr0.0005_s0', 2000)
    (folder / 'models' / 'net_g_latest.pth').write_bytes(b'')
    assert is_finished(tmp_path, 'edsr_lr0.0005_s0', 2000)
    with pytest.raises(ValueError, match='started for 2000 iterations, not 4000'):
        is_finished(tmp_path, 'edsr_lr0.0005_s0', 4000)
    assert not is_finished(tmp_path, 'never_started', 4000)


def test_the_noise_probe_finds_the_data_of_a_study_folder_that_has_moved(tmp_path):
    (tmp_path / 'data' / 'T91' / 'GTmod2').mkdir(parents=True)
    folder = tmp_path / 'experiments' / 'run'
    folder.mkdir(parents=True)
    # Relative to the study folder (as the study writes them), absolute and gone (as it wrote them before),
    # absolute and there.
    (folder / 'run.yml').write_text(
        'datasets:\n  train:\n    dataroot_gt: data/T91/GTmod2\n'
        f'    dataroot_lq: {tmp_path}\n'
        '  val:\n    dataroot_gt: /elsewhere/study/data/T91/GTmod2\n'
        f'    dataroot_lq: {tmp_path}\n')
    datasets = recal_noise.run_options(tmp_path, 'run')['datasets']
    expected = {'dataroot_gt': str(tmp_path / 'data' / 'T91' / 'GTmod2'), 'dataroot_lq': str(tmp_path)}
    assert datasets == {'train': expected, 'val': expected}
    # Validated by SRModel: the layers' own running statistics, whatever the val options say.
    with open(folder / 'run.yml', 'a') as f:
        f.write('model_type: SRModel\nval:\n  recalibrate_batches: 16\n')
    assert recal_noise.recorded_statistics(tmp_path, 'run') == 'moving averages'


def test_diagnosis_table_lists_every_change_and_every_seed_of_the_unchanged_arms(tmp_path):
    preset = PRESETS['cpu']
    lr = preset.diagnosis_lr
    runs = {Run('srcnn', 'dsrcnn_c2', lr, seed): 27.0 + seed / 10 for seed in range(3)}
    runs.update({Run('srcnn', 'srcnn', lr, 0): 27.5, Run('srcnn', 'dsrcnn_c2', lr, 0, 'eps1e-2'): 26.5,
                 Run('srcnn', 'dsrcnn_c2', 1e-4, 1): 20.0})  # another rate: not a reference
    records = {run: [(1000, final + 2, 0.05), (2000, final, 0.04)] for run, final in runs.items()}
    summary = write_record(str(tmp_path), str(tmp_path), 'cpu', preset, records, 'val', {'screen': []})
    section = summary[summary.index('## Diagnosis'):]
    rows = [line for line in section.splitlines() if line.startswith('| DeconvSRCNN') or line.startswith('| SRCNN')]
    assert rows == [
        '| DeconvSRCNN conv2, unchanged, seed 0 | 27.000 | 29.000 | 2.00 | 0.0400 |',
        '| DeconvSRCNN conv2, unchanged, seed 1 | 27.100 | 29.100 | 2.00 | 0.0400 |',
        '| DeconvSRCNN conv2, unchanged, seed 2 | 27.200 | 29.200 | 2.00 | 0.0400 |',
        '| SRCNN, unchanged, seed 0 | 27.500 | 29.500 | 2.00 | 0.0400 |',
        '| DeconvSRCNN conv2, eps1e-2 | 26.500 | 28.500 | 2.00 | 0.0400 |']
    assert (tmp_path / 'diagnosis.png').read_bytes()[:4] == b'\x89PNG'


def test_early_differences_are_paired_by_seed_at_fixed_iterations(tmp_path):
    preset = PRESETS['cpu']
    its = range(100, 2001, 100)
    # The variant leads by 1 dB (+ seed/10) at iteration 100, by nothing later, and trails by 0.5 at the end.
    records = {}
    for seed in range(3):
        records[Run('srcnn', 'srcnn', 1e-3, seed)] = [(it, 25.0 + it / 1000, 0.1) for it in its]
        records[Run('srcnn', 'dsrcnn_c2', 1e-3, seed)] = [
            (it, 25.0 + it / 1000 + (1 + seed / 10 if it == 100 else -0.5 if it == 2000 else 0), 0.1) for it in its]
    summary = write_record(str(tmp_path), str(tmp_path), 'cpu', preset, records, 'val', {'screen': []})
    half = 4.303 * 0.1 / math.sqrt(3)  # t(2) * sd / sqrt(3)
    assert (f'| DeconvSRCNN conv2 (0.001 / 0.001) | +1.100 ± {half:.3f} | +0.000 ± 0.000 | +0.000 ± 0.000 | '
            '+0.000 ± 0.000 | -0.500 ± 0.000 |') in summary
