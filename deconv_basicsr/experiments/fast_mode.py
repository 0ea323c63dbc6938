"""Convergence of FastDeconv's fast mode (``stats_period``) next to the exact mode, side by side.

Small x2 networks train in lockstep, from the same initial weights on the same batches: a plain network,
its deconvolution twin in the exact mode (``stats_period=1``) and in the fast mode. Batches of random HR
crops (no flips) with their LR crops, Adam, L1 loss. Every ``eval_every`` steps: Y-channel PSNR (border 2)
of the validation pairs in eval mode (running statistics, cached folded kernels).
"""
import csv
import os
import statistics
from os import path as osp
from dataclasses import dataclass
from functools import partial

from basicsr.archs.edsr_arch import EDSR

from deconv_basicsr.archs.deconv_edsr_arch import DeconvEDSR
from deconv_basicsr.archs.deconv_srcnn_arch import DeconvSRCNN
from deconv_basicsr.archs.srcnn_arch import SRCNN
from deconv_basicsr.experiments import curves as cv
from deconv_basicsr.experiments.inprocess import Lockstep, RandomCrops, mean_psnr, seeded

SCALE = 2
VAL_CROP = 128  # HR centre crop of every validation image
# Small enough for a CPU study: EDSR with 4 blocks of 32 features (whitened blocks of 32 channels), SRCNN
# 9-5-5 with 32 and 16 filters (conv1 and conv2 in blocks of 8, the default when the recorded figures were
# measured).
NETWORKS = {
    'EDSR': (lambda: EDSR(3, 3, num_feat=32, num_block=4, upscale=SCALE),
             lambda **kw: DeconvEDSR(3, 3, num_feat=32, num_block=4, upscale=SCALE, block=32, **kw)),
    'SRCNN': (lambda: SRCNN(upscale=SCALE, num_feat=(32, 16)),
              lambda **kw: DeconvSRCNN(upscale=SCALE, num_feat=(32, 16), deconv_layers=(1, 2), block=8, **kw)),
}
CSV_FIELDS = ('network', 'seed', 'variant', 'step', 'train_loss', 'psnr', 'seconds')


@dataclass
class Settings:
    networks: tuple = tuple(NETWORKS)
    seeds: tuple = (0, 1, 2)
    steps: int = 300
    eval_every: int = 50
    batch: int = 16
    gt_size: int = 48  # HR crop size
    lr: float = 5e-4
    stats_period: int = 8


def train(network, train_pairs, val_pairs, seed, settings, log=print):
    """Plain, exact and fast variants of ``network`` trained in lockstep; one row per variant and evaluation
    (``CSV_FIELDS``; ``train_loss``: mean L1 over the steps since the previous evaluation)."""
    plain_fn, deconv_fn = NETWORKS[network]
    builders = {'plain': plain_fn, 'exact': deconv_fn,
                f'fast (stats_period={settings.stats_period})': partial(deconv_fn, stats_period=settings.stats_period)}
    trainer = Lockstep({name: seeded(build, seed) for name, build in builders.items()}, settings.lr)
    crops = RandomCrops(train_pairs, settings.gt_size, SCALE, settings.batch, seed, augment=False)
    losses = {name: [] for name in builders}
    rows = []
    for step in range(1, settings.steps + 1):
        for name, loss in trainer.step(*crops()).items():
            losses[name].append(loss)
        if step % settings.eval_every == 0 or step == settings.steps:
            for name, model in trainer.networks.items():
                rows.append(dict(network=network, seed=seed, variant=name, step=step,
                                 train_loss=statistics.fmean(losses[name][-settings.eval_every:]),
                                 psnr=mean_psnr(model.eval(), val_pairs, SCALE), seconds=trainer.seconds[name]))
            log(' | '.join(f'{network} seed {seed} {r["variant"]} step {step}: loss {r["train_loss"]:.4f} '
                           f'PSNR {r["psnr"]:.2f}' for r in rows[-len(builders):]))
    return rows


def write_csv(path, rows):
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def _curves(rows, network, variant, key):
    """One curve of ``key`` per seed: [[(step, value), ...], ...]."""
    by_seed = {}
    for r in rows:
        if (r['network'], r['variant']) == (network, variant):
            by_seed.setdefault(r['seed'], []).append((r['step'], r[key]))
    return list(by_seed.values())


def summary(rows, settings):
    """Markdown: per network, train loss and PSNR of every variant at every evaluation, means over the seeds
    (at the last step with their spread, min to max), and training seconds."""
    seeds = ', '.join(str(seed) for seed in dict.fromkeys(r['seed'] for r in rows))
    lines = [f'Fast mode study: x2, {settings.steps} steps, batch {settings.batch}, {settings.gt_size}x'
             f'{settings.gt_size} HR crops, Adam lr {settings.lr}, seeds {seeds}; PSNR (dB, Y, border {SCALE}) of '
             f'{VAL_CROP}x{VAL_CROP} validation centre crops in eval mode; train loss: mean L1 over the previous '
             f'{settings.eval_every} steps. Means over the seeds (spread: min to max); time: training seconds, '
             'side by side.', '']
    for network in dict.fromkeys(r['network'] for r in rows):
        variants = list(dict.fromkeys(r['variant'] for r in rows if r['network'] == network))
        for key, title, fmt in (('train_loss', 'train loss', '.4f'), ('psnr', 'PSNR', '.2f')):
            curves = {v: _curves(rows, network, v, key) for v in variants}
            means = {v: cv.mean_curve(curves[v])[0] for v in variants}
            lines += [f'**{network}**, {title}', '', '| step | ' + ' | '.join(variants) + ' |',
                      '|---' * (len(variants) + 1) + '|']
            for i, (step, _) in enumerate(means[variants[0]]):
                cells = [format(means[v][i][1], fmt) for v in variants]
                if i == len(means[variants[0]]) - 1:
                    finals = {v: [cv.final(curve) for curve in curves[v]] for v in variants}
                    cells = [cell + (f' ({min(finals[v]):{fmt}}-{max(finals[v]):{fmt}})' if len(finals[v]) > 1 else '')
                             for cell, v in zip(cells, variants)]
                lines.append(f'| {step} | ' + ' | '.join(cells) + ' |')
            lines.append('')
        seconds = {v: statistics.fmean(cv.final(c) for c in _curves(rows, network, v, 'seconds')) for v in variants}
        lines += ['Time (s): ' + ', '.join(f'{v} {seconds[v]:.0f}' for v in variants), '']
    return '\n'.join(lines)


def run(train_pairs, val_pairs, out, settings, log=print):
    """Every network and seed; writes ``out/curves.csv`` (``CSV_FIELDS``) and ``out/summary.md``.

    Returns:
        str: The summary.
    """
    os.makedirs(out, exist_ok=True)
    rows = []
    for network in settings.networks:
        for seed in settings.seeds:
            rows += train(network, train_pairs, val_pairs, seed, settings, log)
    write_csv(osp.join(out, 'curves.csv'), rows)
    text = summary(rows, settings)
    with open(osp.join(out, 'summary.md'), 'w') as f:
        f.write(text + '\n')
    return text
