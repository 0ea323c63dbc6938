"""The screened search: candidates are the study's runs changed by their own keys, and its record says so."""
import csv
import math

import pytest

import deconv_basicsr.plugin  # noqa: F401  (BasicSR importable, the archs and the model registered)
from deconv_basicsr.experiments import screen
from deconv_basicsr.experiments.design import PAIRS, PRESETS, Run, train_options
from deconv_basicsr.training.model_options import check_model_options

DATASETS = {'train': {'name': 'T91', 'type': 'PairedImageDataset', 'dataroot_gt': 'gt', 'dataroot_lq': 'lq',
                      'io_backend': {'type': 'disk'}},
            'val': {'name': 'val', 'type': 'PairedImageDataset', 'dataroot_gt': 'gt', 'dataroot_lq': 'lq',
                    'io_backend': {'type': 'disk'}}}


def _flatten(options, prefix=''):
    flat = {}
    for key, value in options.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f'{prefix}{key}.'))
        else:
            flat[prefix + key] = value
    return flat


@pytest.mark.parametrize('family, lr, iters', [('srcnn', 1e-3, 2000), ('edsr', 5e-4, 4000)])
@pytest.mark.parametrize('candidate', list(screen.CANDIDATES))
def test_each_candidate_is_the_study_run_changed_by_its_own_keys_only(candidate, family, lr, iters):
    preset = PRESETS['cpu']
    opt = screen.candidate_options(preset, family, candidate, lr, iters, 3, DATASETS)
    check_model_options(opt)  # every key is one the arch or the model takes, with a value it accepts
    _, deconvolved, overrides = screen.CANDIDATES[candidate]
    arm = PAIRS[family][deconvolved]
    study = _flatten(train_options(preset, Run(family, arm, lr, iters, 3), DATASETS))
    changed = {key for key, value in _flatten(opt).items() if study.get(key, object()) != value}
    assert changed - {'name'} == set(_flatten(overrides))
    # The unchanged arms are the study's runs, named as there (a screen in the study's folder reuses them).
    assert opt['name'] == (f'{family}_{candidate}_lr{lr:g}_it{iters}_s3' if overrides else
                           f'{arm}_lr{lr:g}_it{iters}_s3')
    assert opt['manual_seed'] == 3
    if not overrides:
        assert opt == train_options(preset, Run(family, arm, lr, iters, 3), DATASETS)
    assert screen.study_length(preset, family, lr) == iters
    with pytest.raises(ValueError, match='--iters'):
        screen.study_length(preset, family, 5e-3)


def test_unknown_candidates_and_families_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"unknown candidates \['pool8'\]"):
        screen.run_screen(str(tmp_path), str(tmp_path), candidates=['pool8'], preset_name='smoke')
    with pytest.raises(ValueError, match='no edsr runs'):
        screen.run_screen(str(tmp_path), str(tmp_path), family='edsr', preset_name='smoke')


def _rows(values, step=100):
    return [((i + 1) * step, v, 0.05) for i, v in enumerate(values)]


def test_summary_pairs_by_seed_and_reads_falls_from_the_curves(tmp_path):
    # Seeds 0-2: SRCNN climbs to 30; the unchanged DeconvSRCNN leads early then falls 2.7 dB and ends at 28;
    # 'pool4' keeps the lead without falling and ends at 30.5.
    records = {}
    for seed in range(3):
        bump = seed * 0.1
        records['baseline', 1e-3, 400, seed] = _rows([26 + bump, 28 + bump, 29 + bump, 30 + bump])
        records['deconv', 1e-3, 400, seed] = _rows([27 + bump, 29.2 + bump, 26.5 + bump, 28 + bump])
        records['pool4', 1e-3, 400, seed] = _rows([27 + bump, 29 + bump, 30 + bump, 30.5 + 2 * bump])
    text = screen.write_record(str(tmp_path), 'srcnn', records, ['baseline', 'deconv', 'pool4'], planned=12)
    assert 'Runs in this record: 9 of 12.' in text
    rows = {line.split(' | ')[0].lstrip('| '): line.split(' | ') for line in text.splitlines()
            if line.startswith('| ') and 'candidate' not in line}
    # Own figures: at iteration 100 (the first validation past 5% of 400), final, largest fall, and falls past
    # iteration 100 (deconv: 2.7 dB and 1.2 dB below its best).
    assert rows['DeconvSRCNN (conv2)'][3:7] == ['27.10 ± 0.10', '28.10 ± 0.10', '2.70 ± 0.00', '2.0 ± 0.0']
    assert rows['pool4'][5:7] == ['0.00 ± 0.00', '0.0 ± 0.0']
    # paired: early - SRCNN = +1 for every seed (sign-flip p 2/2^3 = 0.25, Holm over 2 candidates: 0.5)
    assert rows['pool4'][7] == '+1.00 ± 0.00 (p 0.500)'
    assert rows['DeconvSRCNN (conv2)'][8] == '-2.00 ± 0.00 (p 0.250)'  # not decided: no word
    # final - SRCNN for pool4: 0.5, 0.6, 0.7 dB; t-test p 0.009, Holm over two 0.018: decided, higher.
    assert rows['pool4'][8] == '+0.60 ± 0.25 (p 0.018, **higher**)'
    # fall - DeconvSRCNN: -2.7 dB for every seed
    assert rows['pool4'][10] == '-2.70 ± 0.00 (p 0.250)'
    # Iterations to SRCNN's final mean (30.1) - 0.5 = 29.6: pool4 at 300, SRCNN at 400, deconv never (counts 500).
    assert rows['pool4'][9] == '-100 ± 0 (p 0.500)'  # Holm over two equal p-values
    assert rows['DeconvSRCNN (conv2)'][9] == '+100 ± 0 (p 0.500)'
    assert 'Ranked by final validation PSNR (mean over seeds): pool4, DeconvSRCNN (conv2).' in text
    assert '| early − SRCNN | final − SRCNN | iterations − SRCNN | fall − DeconvSRCNN (conv2) |' in text
    with open(tmp_path / 'curves.csv') as f:
        written = list(csv.DictReader(f))
    assert len(written) == 36 and set(written[0]) == set(screen.FIELDS)
    assert {r['candidate'] for r in written} == {'baseline', 'deconv', 'pool4'}
    assert {r['run'] for r in written if r['candidate'] == 'pool4'} == {f'srcnn_pool4_lr0.001_it400_s{seed}'
                                                                     for seed in range(3)}
    assert (tmp_path / 'screen_lr0.001_it400.png').read_bytes()[:4] == b'\x89PNG'


def test_each_candidate_is_compared_at_its_own_best_rate_with_the_baseline_at_its_own(tmp_path):
    # SRCNN ends higher at 1e-3 (30) than at 3e-3 (29); pool4 higher at 3e-3 (30.5 + seed/10) than at 1e-3 (28);
    # the unchanged arm has runs at 1e-3 only.
    records = {}
    for seed in range(3):
        records['baseline', 1e-3, 400, seed] = _rows([29, 30])
        records['baseline', 3e-3, 400, seed] = _rows([28, 29])
        records['pool4', 1e-3, 400, seed] = _rows([27, 28])
        records['pool4', 3e-3, 400, seed] = _rows([29, 30.5 + seed / 10])
        records['deconv', 1e-3, 400, seed] = _rows([28, 29 - seed / 10])
    text = screen.write_record(str(tmp_path), 'srcnn', records, ['baseline', 'deconv', 'pool4'], planned=18)
    section = text[text.index('## Each at its own best rate, 400 iterations'):]
    assert "SRCNN's is 0.001." in section and '(0.001, 0.003; chosen after seeing them)' in section
    # Paired by seed against SRCNN at 1e-3: the unchanged arm at 1e-3 -1.0, -1.1, -1.2 (t-test p 0.0027, the
    # smaller, times 2 by Holm: 0.005); pool4 at 3e-3 +0.5, +0.6, +0.7 (p 0.009, Holm's second: times 1).
    assert '| DeconvSRCNN (conv2) | 0.001 | 3 | -1.10 ± 0.25 (p 0.005, **lower**) |' in section
    assert '| pool4 | 0.003 | 3 | +0.60 ± 0.25 (p 0.009, **higher**) |' in section
    # One rate: no such section.
    one_rate = {key: rows for key, rows in records.items() if key[1] == 1e-3}
    text = screen.write_record(str(tmp_path), 'srcnn', one_rate, ['baseline', 'deconv', 'pool4'], planned=9)
    assert 'own best rate' not in text


def test_falls_count_validations_past_the_early_point_a_dB_below_the_best():
    curve = [(100, 30.0), (200, 28.5), (300, 31.0), (400, 29.9), (500, 30.5)]
    assert screen.falls(curve, after=100) == 2
    assert screen.falls(curve, after=300) == 1
    assert math.isclose(screen.cv.worst_drop(curve), 1.5)


def test_smoke_screen_trains_records_and_continues(tmp_path):
    # One seed: the code path end to end (the statistics over seeds are tested on made-up records above).
    out, record = tmp_path / 'screen', tmp_path / 'record'
    text = screen.run_screen(str(out), str(record), candidates=['pool4'], seeds=(1, ), preset_name='smoke',
                             log=lambda line: None)
    assert 'Runs in this record: 3 of 3.' in text and 'the embedded dataset): its figures decide nothing' in text
    with open(record / 'curves.csv') as f:
        written = list(csv.DictReader(f))
    smoke = PRESETS['smoke']
    assert {(r['run'], r['candidate'], r['seed']) for r in written} == {
        ('srcnn_lr0.001_it8_s1', 'baseline', '1'), ('dsrcnn_c2_lr0.001_it8_s1', 'deconv', '1'),
        ('srcnn_pool4_lr0.001_it8_s1', 'pool4', '1')}
    assert len(written) == 3 * (8 // smoke.val_freq)
    assert all(5 < float(r['psnr']) < 60 for r in written)
    assert (record / 'screen_lr0.001_it8.png').read_bytes()[:4] == b'\x89PNG'
    logs = {log.name: log.read_text() for log in (out / 'logs').iterdir()}
    assert screen.run_screen(str(out), str(record), candidates=['pool4'], seeds=(1, ), preset_name='smoke',
                             log=lambda line: None) == text
    assert {log.name: log.read_text() for log in (out / 'logs').iterdir()} == logs  # nothing trained again
    # A partial record: what has finished, nothing trained.
    partial = screen.run_screen(str(out), str(tmp_path / 'partial'), candidates=['pool4', 'shrink'], seeds=(1, ),
                                preset_name='smoke', train=False, log=lambda line: None)
    assert 'Runs in this record: 3 of 4' in partial
    assert not (out / 'experiments' / 'srcnn_shrink_lr0.001_it8_s1').exists()
    assert {log.name: log.read_text() for log in (out / 'logs').iterdir()} == logs


def test_screen_takes_the_unchanged_arms_only_from_a_study_record_that_holds_them_whole(tmp_path):
    from deconv_basicsr.experiments import curves as cv
    from deconv_basicsr.experiments.runner import is_finished

    iters, every = 8, PRESETS['smoke'].val_freq
    baseline, deconv = (Run('srcnn', PAIRS['srcnn'][deconvolved], 1e-3, iters, 1) for deconvolved in (False, True))

    def made_up(psnr, last):
        return [(it, psnr, math.nan, 0.05) for it in range(every, last + 1, every)]

    study = tmp_path / 'curves.csv'
    cv.write_csv(study, {baseline: made_up(20.0, iters), deconv: made_up(21.0, iters - every)})  # deconv cut short
    out, record = tmp_path / 'screen', tmp_path / 'record'
    text = screen.run_screen(str(out), str(record), candidates=[], seeds=(1, ), preset_name='smoke',
                             study_record=str(study), log=lambda line: None)
    assert 'Runs in this record: 2 of 2.' in text and f"study's record `{study}`, not trained here: 1." in text
    assert not is_finished(str(out), baseline.name, iters) and is_finished(str(out), deconv.name, iters)
    with open(record / 'curves.csv') as f:
        psnr = {(r['candidate'], int(r['iter'])): float(r['psnr']) for r in csv.DictReader(f)}
    assert {key: value for key, value in psnr.items() if key[0] == 'baseline'} == {('baseline', 4): 20.0,
                                                                                  ('baseline', 8): 20.0}
    assert sorted(it for candidate, it in psnr if candidate == 'deconv') == [4, 8]
    assert all(value != 21.0 for (candidate, _), value in psnr.items() if candidate == 'deconv')


@pytest.mark.parametrize('candidate', list(screen.CANDIDATES))
def test_each_candidate_trains_through_deconv_sr_model(tmp_path, candidate):
    import torch
    from basicsr.models import build_model

    opt = screen.candidate_options(PRESETS['smoke'], 'srcnn', candidate, 1e-3, 8, 0, DATASETS)
    opt.update(num_gpu=0, is_train=True, dist=False, rank=0, world_size=1)
    opt['path'].update(models=str(tmp_path), training_states=str(tmp_path))
    torch.manual_seed(0)
    model = build_model(opt)
    before = {name: p.detach().clone() for name, p in model.net_g.named_parameters()}
    g = torch.Generator().manual_seed(0)
    for step in range(1, 4):
        model.update_learning_rate(step, warmup_iter=opt['train']['warmup_iter'])
        gt = torch.rand(4, 3, 32, 32, generator=g)
        model.feed_data({'lq': torch.nn.functional.avg_pool2d(gt, 2), 'gt': gt})
        model.optimize_parameters(step)
        assert math.isfinite(model.log_dict['l_pix'])
    assert all(not torch.equal(p, before[name]) for name, p in model.net_g.named_parameters())
