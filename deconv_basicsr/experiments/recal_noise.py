"""How much of a study run's validation curve is its weights, and how much the statistics it was validated with.

Before every validation, ``DeconvSRModel`` recalibrates the FastDeconv statistics on the last 16 training
batches, and saves them with the checkpoint. Those 16 batches are a sample: other batches give other
statistics and another PSNR for the same weights. This probe takes every saved checkpoint of a finished
study run (``experiments/<run>/models/net_g_<iter>.pth``, one per validation), recalibrates it ``sets``
times on disjoint sets of fresh training batches for each batch count (drawn from the run's own BasicSR
training dataset, so cropped and augmented as in training), and validates each on the run's validation
images. At a checkpoint, the spread over the sets is the evaluation noise of that batch count; the mean over
the sets at a large count is the PSNR of the weights with that noise averaged out.
"""
import csv
import math
import os
import random
import re
import statistics
from os import path as osp

import numpy as np
import torch

from deconv_basicsr.experiments import curves as cv
from deconv_basicsr.experiments.inprocess import mean_psnr
from deconv_basicsr.layers import recalibrate_deconv_stats
from deconv_basicsr.training.options import load_options

CSV_FIELDS = ('run', 'iter', 'batches', 'set', 'psnr')
_CHECKPOINT = re.compile(r'net_g_(\d+)\.pth$')


def run_options(out, name):
    """The BasicSR options the run was trained with (BasicSR's copy in its experiment folder), with its dataset
    folders as paths from here: the study gives them relative to ``out``. Absolute paths that no longer exist
    (a study folder written before, then moved) are looked for under ``out/data``."""
    path = osp.join(out, 'experiments', name, f'{name}.yml')
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path}: no such run under {out}')
    opt = load_options(path)
    for dataset in opt['datasets'].values():
        for key in ('dataroot_gt', 'dataroot_lq'):
            if not osp.isabs(dataset[key]):
                dataset[key] = osp.join(out, dataset[key])
            elif not osp.exists(dataset[key]) and '/data/' in dataset[key]:
                dataset[key] = osp.join(out, 'data', dataset[key].split('/data/', 1)[1])
    return opt


def recorded_statistics(out, name):
    """What the run's recorded curve was validated with, in words (from its ``val`` options); None when the
    run is not under ``out``."""
    from deconv_basicsr.models.deconv_sr_model import DeconvSRModel
    try:
        opt = run_options(out, name)
    except FileNotFoundError:
        return None
    val_opt = DeconvSRModel.check_options(opt)
    count = val_opt['recalibrate_batches']
    if opt.get('model_type') != 'DeconvSRModel' or not count:  # the layers' own running statistics
        return 'moving averages'
    return f"the run's {'first' if val_opt['recalibrate_fixed'] else 'last'} {count} batches"


def checkpoints(out, name):
    """``[(iteration, path)]`` of the run's saved generator weights, by iteration."""
    folder = osp.join(out, 'experiments', name, 'models')
    found = [(int(m.group(1)), osp.join(folder, f)) for f in os.listdir(folder)
             if (m := _CHECKPOINT.match(f))]
    return sorted(found)


def _dataset(opt, phase):
    """The run's BasicSR dataset of ``phase`` ('train' or 'val'), built from its options as training built it."""
    from basicsr.data import build_dataset
    return build_dataset({**opt['datasets'][phase], 'phase': phase, 'scale': opt['scale']})


def probe_run(out, name, counts=(16, 128), sets=3, seed=1000, log=print):
    """Validate every checkpoint of run ``name`` under ``out`` after recalibration on ``sets`` disjoint sets
    of each count of fresh training batches (the sets of a smaller count are prefixes of the larger's).

    The batches are drawn, with replacement, from the run's own training dataset (BasicSR's, so cropped and
    augmented as in training); validation uses the run's validation dataset.

    Returns:
        list: ``(run, iteration, batches, set, psnr)`` rows.
    """
    from basicsr.archs import build_network

    opt = run_options(out, name)
    train, val = _dataset(opt, 'train'), _dataset(opt, 'val')
    val_pairs = [(item['lq'], item['gt']) for item in val]
    batch_size = opt['datasets']['train']['batch_size_per_gpu']
    random.seed(seed)  # BasicSR's crops and flips draw from Python's generator
    rng = np.random.default_rng(seed)

    def batch():
        return torch.stack([train[int(i)]['lq'] for i in rng.integers(len(train), size=batch_size)])

    batch_sets = [[batch() for _ in range(max(counts))] for _ in range(sets)]
    network = build_network(opt['network_g'])
    rows = []
    for iteration, path in checkpoints(out, name):
        network.load_state_dict(torch.load(path, map_location='cpu', weights_only=True)['params'])
        for count in counts:
            psnrs = []
            for index, batches in enumerate(batch_sets):
                recalibrate_deconv_stats(network, batches[:count])
                network.eval()
                psnrs.append(mean_psnr(network, val_pairs, border=opt['scale']))
                rows.append((name, iteration, count, index, psnrs[-1]))
            log(f'{name} iter {iteration:5d}  {count:4d} batches: ' + ' '.join(f'{p:.2f}' for p in psnrs))
    return rows


def write_csv(path, rows):
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(CSV_FIELDS)
        writer.writerows((run, it, n, k, f'{psnr:.4f}') for run, it, n, k, psnr in rows)


def read_csv(path):
    with open(path, newline='') as f:
        return [(r['run'], int(r['iter']), int(r['batches']), int(r['set']), float(r['psnr']))
                for r in csv.DictReader(f)]


def mean_curves(rows):
    """``{(run, batches): (curve, spreads)}``: the curve of the mean over the sets, and the spread over the
    sets (largest minus smallest) at every checkpoint."""
    grouped = {}
    for run, it, count, _, psnr in rows:
        grouped.setdefault((run, count), {}).setdefault(it, []).append(psnr)
    return {key: ([(it, statistics.fmean(v)) for it, v in sorted(by_iter.items())],
                  [max(v) - min(v) for _, v in sorted(by_iter.items())]) for key, by_iter in grouped.items()}


def summary(rows, records=None, recorded=None):
    """Markdown. Per run and batch count: the spread over the sets (median and largest over checkpoints), the
    final mean, and the worst fall and late swing of the mean curve. With ``records`` (the study's curves,
    ``{Run: [(iteration, psnr, psnr_running, loss)]}``): the same for the curve the run recorded, and the final difference to
    the baseline of the same rate and seed, per arm and rate, recorded and with the largest batch count.
    ``recorded``: ``{run name: recorded_statistics(...)}``, what the recorded curves were validated with."""
    from deconv_basicsr.experiments.design import PAIRS, Run

    by_name = {run.name: run for run in records or {}}
    curves = mean_curves(rows)
    lines = ['| run | statistics | spread over sets, median / largest (dB) | final | worst fall | late swing |',
             '|---|---|---|---|---|---|']
    for name in sorted({row[0] for row in rows}):
        if name in by_name:
            curve = [(it, psnr) for it, psnr, *_ in records[by_name[name]]]
            how = (recorded or {}).get(name)
            lines.append(f'| {name} | recorded{f" ({how})" if how else ""} | | {cv.final(curve):.2f} | '
                         f'{cv.worst_drop(curve):.2f} | {cv.late_swing(curve):.2f} |')
        for count in sorted(n for run, n in curves if run == name):
            curve, spreads = curves[name, count]
            sets = len({row[3] for row in rows if row[0] == name and row[2] == count})
            lines.append(f'| {name} | {count} fresh batches, mean of {sets} sets | {statistics.median(spreads):.2f} / '
                         f'{max(spreads):.2f} | {cv.final(curve):.2f} | {cv.worst_drop(curve):.2f} | '
                         f'{cv.late_swing(curve) if len(curve) > 1 else math.nan:.2f} |')
    if not by_name:
        return '\n'.join(lines) + '\n'

    largest = max(row[2] for row in rows)
    differences = {}  # (arm, lr) -> {seed: (recorded, probed)}
    for name in {row[0] for row in rows} & set(by_name):
        run = by_name[name]
        baseline = records.get(Run(run.family, PAIRS[run.family][0], run.lr, run.iters, run.seed))
        if baseline is None or (name, largest) not in curves:
            continue
        base = baseline[-1][1]
        differences.setdefault((run.arm, run.lr), {})[run.seed] = (
            records[run][-1][1] - base, cv.final(curves[name, largest][0]) - base)
    lines += ['', f'Final difference to the baseline (same rate and seed), mean ± 95% half-width over seeds:', '',
              f'| arm | rate | seeds | recorded | recalibrated on {largest} fresh batches, mean of the sets |',
              '|---|---|---|---|---|']
    for (arm, lr), by_seed in sorted(differences.items()):
        cells = [cv.interval95([pair[i] for pair in by_seed.values()]) for i in (0, 1)]
        lines.append(f'| {arm} | {lr:g} | {len(by_seed)} | ' +
                     ' | '.join(f'{m:+.2f} ± {h:.2f}' for m, h in cells) + ' |')
    return '\n'.join(lines) + '\n'
