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
import re
import statistics
from os import path as osp

import torch
import yaml

from deconv_basicsr.experiments import curves as cv
from deconv_basicsr.experiments.inprocess import mean_psnr
from deconv_basicsr.layers import recalibrate_deconv_stats

CSV_FIELDS = ('run', 'iter', 'batches', 'set', 'psnr')
_CHECKPOINT = re.compile(r'net_g_(\d+)\.pth$')


def run_options(out, name):
    """The BasicSR options the run was trained with (BasicSR's copy in its experiment folder), its dataset
    folders found under ``out/data`` when the study folder has moved since (the study writes absolute paths)."""
    path = osp.join(out, 'experiments', name, f'{name}.yml')
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path}: no such run under {out}')
    with open(path) as f:
        opt = yaml.safe_load(f)
    for dataset in opt['datasets'].values():
        for key in ('dataroot_gt', 'dataroot_lq'):
            if not osp.exists(dataset[key]) and '/data/' in dataset[key]:
                dataset[key] = osp.join(out, 'data', dataset[key].split('/data/', 1)[1])
    return opt


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
    import random

    import numpy as np
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


def summary(rows, recorded=None):
    """Markdown: per run and batch count, the spread over the sets (median and largest over checkpoints),
    the final mean, and the worst fall and late swing of the mean curve; ``recorded``
    (``{run name: [(iteration, psnr)]}``, the study's curves) gives the same for the curve validation drew."""
    lines = ['| run | statistics | spread over sets, median / largest (dB) | final | worst fall | late swing |',
             '|---|---|---|---|---|---|']
    for name in sorted({row[0] for row in rows}):
        if recorded and recorded.get(name):
            curve = recorded[name]
            lines.append(f'| {name} | recorded (the run\'s last 16 batches) | | {cv.final(curve):.2f} | '
                         f'{cv.worst_drop(curve):.2f} | {cv.late_swing(curve):.2f} |')
        for count in sorted({row[2] for row in rows if row[0] == name}):
            by_iter = {}
            for run, it, n, _, psnr in rows:
                if run == name and n == count:
                    by_iter.setdefault(it, []).append(psnr)
            spreads = [max(v) - min(v) for v in by_iter.values()]
            curve = [(it, statistics.fmean(v)) for it, v in sorted(by_iter.items())]
            sets = len(next(iter(by_iter.values())))
            lines.append(f'| {name} | {count} fresh batches, mean of {sets} sets | {statistics.median(spreads):.2f} / '
                         f'{max(spreads):.2f} | {cv.final(curve):.2f} | {cv.worst_drop(curve):.2f} | '
                         f'{cv.late_swing(curve) if len(curve) > 1 else math.nan:.2f} |')
    return '\n'.join(lines) + '\n'
