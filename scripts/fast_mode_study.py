"""Convergence of FastDeconv's fast mode (``stats_period``) next to the exact mode, side by side.

    python scripts/fast_mode_study.py                          # 3 seeds x 300 steps, about 15 min on a CPU
    python scripts/fast_mode_study.py --steps 40 --eval-every 20 --out /tmp/smoke

Small x2 networks are trained from the same initialisation on the same batches, in lockstep: a plain
network, its deconvolution twin in the exact mode (``stats_period=1``) and in the fast mode. Data: random
48x48 HR crops of T91 with LR by MATLAB-compatible bicubic downsampling, batch 16, Adam, L1 loss.
Every ``--eval-every`` steps: PSNR on the Y channel (border 2) of 128x128 centre crops of Set5, in eval mode
(running statistics, cached folded kernels). Writes OUT/curves.csv (one row per network, variant and
evaluation) and OUT/summary.md, and prints the summary.
"""
import argparse
import csv
import glob
import os
import os.path as osp
import statistics
import sys
import time

import cv2
import numpy as np
import torch
from torch.nn import functional as F

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import deconv_basicsr  # noqa: E402,F401  (installs BasicSR's compatibility patches)
from basicsr.archs.edsr_arch import EDSR  # noqa: E402
from basicsr.metrics import calculate_psnr  # noqa: E402
from basicsr.utils.matlab_functions import imresize  # noqa: E402

from deconv_basicsr.archs.deconv_edsr_arch import DeconvEDSR  # noqa: E402
from deconv_basicsr.archs.deconv_srcnn_arch import DeconvSRCNN  # noqa: E402
from deconv_basicsr.archs.srcnn_arch import SRCNN  # noqa: E402

SCALE = 2
# Small enough for a CPU study: EDSR with 4 blocks of 32 features (whitened blocks of 32 channels), SRCNN
# 9-5-5 with 32 and 16 filters (its default deconvolved layers and blocks).
NETWORKS = {
    'EDSR': (lambda: EDSR(3, 3, num_feat=32, num_block=4, upscale=SCALE),
             lambda **kw: DeconvEDSR(3, 3, num_feat=32, num_block=4, upscale=SCALE, block=32, **kw)),
    'SRCNN': (lambda: SRCNN(upscale=SCALE, num_feat=(32, 16)),
              lambda **kw: DeconvSRCNN(upscale=SCALE, num_feat=(32, 16), **kw)),
}


def read_rgb(path):
    return cv2.cvtColor(cv2.imread(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB).astype(np.float32) / 255.


def lr_hr_pair(hr):
    h, w = (s - s % SCALE for s in hr.shape[:2])
    hr = hr[:h, :w]
    return np.clip(imresize(hr, 1 / SCALE), 0, 1), hr


def to_tensor(images):
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()


class Crops:
    """Random aligned LR/HR crops of a folder of HR images (their LR versions computed once)."""

    def __init__(self, folder, hr_size, seed):
        self.pairs = [lr_hr_pair(read_rgb(p)) for p in sorted(glob.glob(osp.join(folder, '*.png')))]
        if not self.pairs:
            raise SystemExit(f'no PNG images in {folder}')
        self.lr_size = hr_size // SCALE
        self.rng = np.random.default_rng(seed)

    def batch(self, size):
        lqs, gts = [], []
        for index in self.rng.integers(len(self.pairs), size=size):
            lq, gt = self.pairs[index]
            top = self.rng.integers(lq.shape[0] - self.lr_size + 1)
            left = self.rng.integers(lq.shape[1] - self.lr_size + 1)
            lqs.append(lq[top:top + self.lr_size, left:left + self.lr_size])
            gts.append(gt[SCALE * top:SCALE * (top + self.lr_size), SCALE * left:SCALE * (left + self.lr_size)])
        return to_tensor(lqs), to_tensor(gts)


def validation_set(folder, crop=128):
    pairs = []
    for path in sorted(glob.glob(osp.join(folder, '*.png'))):
        hr = read_rgb(path)
        top, left = max(0, (hr.shape[0] - crop) // 2), max(0, (hr.shape[1] - crop) // 2)
        pairs.append(lr_hr_pair(hr[top:top + crop, left:left + crop]))
    return pairs


@torch.no_grad()
def psnr(model, pairs):
    model.eval()
    values = []
    for lq, gt in pairs:
        sr = model(to_tensor([lq]))[0].clamp(0, 1).permute(1, 2, 0).numpy()
        values.append(calculate_psnr(np.round(sr * 255), np.round(gt * 255), SCALE, test_y_channel=True))
    model.train()
    return statistics.mean(values)


def run(network, args, crops, val, seed):
    plain_fn, deconv_fn = NETWORKS[network]
    variants = {}
    fast = f'fast (stats_period={args.stats_period})'
    for name, build in (('plain', plain_fn), ('exact', deconv_fn),
                        (fast, lambda: deconv_fn(stats_period=args.stats_period))):
        torch.manual_seed(seed)  # same initial weights for all three
        model = build()
        variants[name] = dict(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=args.lr),
                              losses=[], seconds=0.0)
    rows = []
    for step in range(1, args.steps + 1):
        lq, gt = crops.batch(args.batch)
        for variant in variants.values():
            start = time.perf_counter()
            variant['optimizer'].zero_grad(set_to_none=True)
            loss = F.l1_loss(variant['model'](lq), gt)
            loss.backward()
            variant['optimizer'].step()
            variant['seconds'] += time.perf_counter() - start
            variant['losses'].append(loss.item())
        if step % args.eval_every == 0 or step == args.steps:
            for name, variant in variants.items():
                recent = variant['losses'][-args.eval_every:]
                rows.append(dict(network=network, seed=seed, variant=name, step=step,
                                 train_loss=statistics.mean(recent), psnr=psnr(variant['model'], val),
                                 seconds=variant['seconds']))
            print(' | '.join(f'{network} seed {seed} {r["variant"]} step {step}: loss {r["train_loss"]:.4f} '
                             f'PSNR {r["psnr"]:.2f}' for r in rows[-len(variants):]), flush=True)
    return rows


def summary(rows, args):
    seeds = sorted(set(r['seed'] for r in rows))
    lines = [f'Fast mode study: x2, {args.steps} steps, batch {args.batch}, 48x48 HR crops of T91, Adam lr {args.lr}, '
             f'seeds {", ".join(map(str, seeds))}; PSNR (dB, Y, border 2) on 128x128 centre crops of Set5 in eval '
             f'mode; train loss: mean L1 over the previous {args.eval_every} steps. Means over the seeds (spread: '
             'min to max); time: training seconds, side by side.', '']
    for network in dict.fromkeys(r['network'] for r in rows):
        runs = [r for r in rows if r['network'] == network]
        names = list(dict.fromkeys(r['variant'] for r in runs))
        steps = list(dict.fromkeys(r['step'] for r in runs))

        def cell(step, name, key, fmt, spread=True):
            values = [r[key] for r in runs if r['step'] == step and r['variant'] == name]
            text = format(statistics.mean(values), fmt)
            if spread and len(values) > 1 and step == steps[-1]:
                text += f' ({min(values):{fmt}}-{max(values):{fmt}})'
            return text

        for key, title, fmt in (('train_loss', 'train loss', '.4f'), ('psnr', 'Set5 PSNR', '.2f')):
            lines += [f'**{network}**, {title}', '', '| step | ' + ' | '.join(names) + ' |',
                      '|---' * (len(names) + 1) + '|']
            lines += [f'| {step} | ' + ' | '.join(cell(step, n, key, fmt) for n in names) + ' |' for step in steps]
            lines.append('')
        lines.append('Time (s): ' + ', '.join(f'{n} {cell(steps[-1], n, "seconds", ".0f", False)}' for n in names))
        lines.append('')
    return '\n'.join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_data = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), '..', 'shared', 'datasets')
    parser.add_argument('--data', default=default_data, help='folder holding T91/ and Set5/')
    parser.add_argument('--out', default='fast_mode_study')
    parser.add_argument('--networks', nargs='+', choices=sorted(NETWORKS), default=sorted(NETWORKS))
    parser.add_argument('--steps', type=int, default=300)
    parser.add_argument('--eval-every', type=int, default=50)
    parser.add_argument('--batch', type=int, default=16)
    parser.add_argument('--lr', type=float, default=5e-4)
    parser.add_argument('--stats-period', type=int, default=8)
    parser.add_argument('--threads', type=int, default=1,
                        help='CPU threads (default 1: on shared cores, more threads mostly wait for each other)')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    val = validation_set(osp.join(args.data, 'Set5'))
    rows = []
    for network in args.networks:
        for seed in args.seeds:
            rows += run(network, args, Crops(osp.join(args.data, 'T91'), 48, seed), val, seed)
    with open(osp.join(args.out, 'curves.csv'), 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    text = summary(rows, args)
    with open(osp.join(args.out, 'summary.md'), 'w') as f:
        f.write(text + '\n')
    print(text)


if __name__ == '__main__':
    main()
