"""Why DeconvSRCNN's validation curve swings: eval statistics measured on the same checkpoints.

Trains SRCNN and DeconvSRCNN (only conv2 deconvolved, block 16) side by side on T91 (x2, batch 16, 64x64
HR crops with flips and rotations, Adam 1e-4, L1), from the same initial weights, and validates on Set5
(Y-channel PSNR, border 2) every ``--val-every`` iterations. Data lives in memory; LR images come from
BasicSR's MATLAB-compatible bicubic, rounded to 8 bits. The defaults (400 iterations, validation every 25)
scale the issue's run (1500, every 100) down to what 2 shared CPU cores do in about an hour; the swings
show from about iteration 150 on.

In training mode a FastDeconv layer whitens with each batch's own statistics, so the training trajectory
does not depend on how eval statistics are estimated, and runs with the same seed follow the same
trajectory. Each deconv checkpoint is validated with every estimate (``--estimates``) at once:

- ``running``:          the layer's buffers: EMA of the batch mean and of D (momentum 0.1, from 0 and I).
- ``emaD m=0.01``:      EMA of D with momentum 0.01.
- ``emaCov``:           EMA (momentum 0.1) of the mean and of the covariance, D = isqrt(EMA of Cov).
- ``recal N``:          recalibrated on the last N training batches with the current weights, pooled
                        covariance (``recalibrate_deconv_stats(average='cov')``).
- ``recal N avgD``:     the same batches, averaging the batch D's (``average='deconv'``), for each N.
- ``fixed N``, ``fixed N avgD``: the same, on the first N training batches, the same set every time.
- ``ema``:              an exponential moving average of the weights (``--ema-decay``, BasicSR's ``ema_decay``;
                        buffers copied, as deconv_basicsr's compatibility patch has it), recalibrated on the
                        last max(N) batches averaging D; with ``baseline`` also the baseline's weight average.
- ``own``:              every validation image whitened with its own statistics.
- ``set5 pooled``:      statistics pooled over the five Set5 images (a diagnostic of the crop/whole-image
                        gap, not a usable estimate).

It prints each PSNR curve, its best, and the median absolute change between consecutive validations over
the second half of training ("late swing"), how far each estimate's D and mean lie from the recalibrated
ones, and then, with the last weights fixed, how much the PSNR moves with the statistics alone
(recalibration on disjoint sets of fresh batches; swapping mean and D between running and recalibrated).

Run from the repository root:
    python scripts/eval_stats_study.py                     # every curve, then the final analysis
    python scripts/eval_stats_study.py --final-only        # train the deconv arm, final analysis only
    python scripts/eval_stats_study.py --estimates running recal avgD fixed "fixed avgD" --recal 32 \
        --recal-fixed 32
"""
import argparse
import copy
import glob
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
from basicsr.utils.matlab_functions import imresize  # noqa: E402

from deconv_basicsr.archs.deconv_srcnn_arch import DeconvSRCNN  # noqa: E402
from deconv_basicsr.archs.srcnn_arch import SRCNN  # noqa: E402
from deconv_basicsr.layers import FastDeconv  # noqa: E402
from deconv_basicsr.layers.isqrt import isqrt  # noqa: E402
from deconv_basicsr.layers.recalibrate import recalibrate_deconv_stats  # noqa: E402


ESTIMATES = ('baseline', 'running', 'emaD m=0.01', 'emaCov', 'recal', 'avgD', 'fixed', 'fixed avgD', 'ema', 'own',
             'set5')


def load_pairs(folder, scale):
    """(HR, LR) float32 RGB tensors (3, H, W) in [0, 1]; HR mod-cropped, LR by MATLAB bicubic, 8-bit."""
    pairs = []
    for name in sorted(glob.glob(osp.join(folder, '*.png'))):
        hr = cv2.imread(name, cv2.IMREAD_COLOR)[:, :, ::-1].astype(np.float32) / 255.
        hr = hr[:hr.shape[0] - hr.shape[0] % scale, :hr.shape[1] - hr.shape[1] % scale]
        lr = np.clip(np.round(imresize(hr, 1 / scale) * 255), 0, 255) / 255.
        pairs.append((torch.from_numpy(hr.transpose(2, 0, 1).copy()),
                      torch.from_numpy(lr.transpose(2, 0, 1).astype(np.float32).copy())))
    return pairs


class CropSampler:
    """Random aligned crops with hflip / vflip / transpose, as BasicSR's PairedImageDataset makes them."""

    def __init__(self, pairs, gt_size, scale, batch_size, seed):
        self.pairs, self.gt_size, self.scale, self.batch_size = pairs, gt_size, scale, batch_size
        self.rng = np.random.default_rng(seed)

    def __call__(self):
        lqs, gts = [], []
        lq_size = self.gt_size // self.scale
        for _ in range(self.batch_size):
            hr, lr = self.pairs[self.rng.integers(len(self.pairs))]
            top = self.rng.integers(lr.shape[1] - lq_size + 1)
            left = self.rng.integers(lr.shape[2] - lq_size + 1)
            lq = lr[:, top:top + lq_size, left:left + lq_size]
            s = self.scale
            gt = hr[:, top * s:(top + lq_size) * s, left * s:(left + lq_size) * s]
            hflip, vflip, rot = self.rng.random(3) < 0.5
            for flag, op in ((hflip, lambda t: t.flip(-1)), (vflip, lambda t: t.flip(-2)),
                             (rot, lambda t: t.transpose(-1, -2))):
                if flag:
                    lq, gt = op(lq), op(gt)
            lqs.append(lq)
            gts.append(gt)
        return torch.stack(lqs), torch.stack(gts)


def y_psnr(sr, hr, border):
    """BasicSR's calculate_psnr(test_y_channel=True) on an 8-bit-rounded output."""
    sr = (sr.clamp(0, 1) * 255).round().double() / 255
    weights = torch.tensor([65.481, 128.553, 24.966], dtype=torch.float64).view(3, 1, 1)
    y_sr, y_hr = [(img * weights).sum(0) + 16. for img in (sr[0], hr.double())]
    diff = (y_sr - y_hr)[border:-border, border:-border]
    return 10 * torch.log10(255.**2 / diff.square().mean()).item()


@torch.no_grad()
def validate(model, val_pairs, scale, own_statistics=False):
    """Mean Y-PSNR over the validation pairs, in eval mode (or with each image's own statistics)."""
    model = clone(model)
    model.eval()
    if own_statistics:
        for layer in deconv_layers(model):
            layer.train()  # a throw-away copy: updating its buffers is harmless
    return statistics.mean(y_psnr(model(lr[None]), hr, scale) for hr, lr in val_pairs)


def deconv_layers(model):
    return [m for m in model.modules() if isinstance(m, FastDeconv)]


def clone(model):
    """A deep copy without ShadowEstimates' capturing hooks (they must see training batches only)."""
    model = copy.deepcopy(model)
    for layer in deconv_layers(model):
        layer.__dict__.pop("batch_moments", None)
    return model


def with_statistics(model, stats):
    """A copy of ``model`` whose FastDeconv layers hold the given (mean, D) pairs, one per layer."""
    model = clone(model)
    for layer, (mean, deconv) in zip(deconv_layers(model), stats):
        layer.running_mean.copy_(mean)
        layer.running_deconv.copy_(deconv)
    return model


class ShadowEstimates:
    """Alternative running estimates, fed by the same training batches as the layer's own buffers."""

    def __init__(self, model):
        self.layers = deconv_layers(model)
        eye = [torch.eye(layer.num_features).expand_as(layer.running_deconv).double() for layer in self.layers]
        zero = [torch.zeros_like(layer.running_mean).double() for layer in self.layers]
        self.est = {
            'emaD m=0.01': [(m.clone(), e.clone()) for m, e in zip(zero, eye)],
            'emaCov': [(m.clone(), e.clone()) for m, e in zip(zero, eye)],
        }
        for i, layer in enumerate(self.layers):
            layer.batch_moments = self._capturing(layer, i)

    def _capturing(self, layer, i):
        moments = type(layer).batch_moments.__get__(layer)

        def captured(x):
            mean, cov = moments(x)
            if layer.training:
                with torch.no_grad():
                    self.update(i, layer, mean.double(), cov.detach())
            return mean, cov

        return captured

    def update(self, i, layer, mean, cov):
        deconv = isqrt(cov.float(), layer.n_iter, 'spectral').double()
        m, d = self.est['emaD m=0.01'][i]
        self.est['emaD m=0.01'][i] = (0.99 * m + 0.01 * mean, 0.99 * d + 0.01 * deconv)
        m, c = self.est['emaCov'][i]
        self.est['emaCov'][i] = (0.9 * m + 0.1 * mean, 0.9 * c + 0.1 * cov.double())

    def statistics(self, name):
        if name != 'emaCov':
            return self.est[name]
        return [(m, isqrt(c, layer.n_iter, 'spectral')) for (m, c), layer in zip(self.est[name], self.layers)]


@torch.no_grad()
def update_weight_average(average, model, decay):
    """BasicSR's model_ema step: parameters averaged, buffers copied."""
    for a, p in zip(average.parameters(), model.parameters()):
        a.mul_(decay).add_(p, alpha=1 - decay)
    for a, b in zip(average.buffers(), model.buffers()):
        a.copy_(b)


def recalibrated(model, batches, average='cov'):
    model = clone(model)
    recalibrate_deconv_stats(model, batches, average=average)
    return model


def stats_of(model):
    return [(layer.running_mean.double().clone(), layer.running_deconv.double().clone())
            for layer in deconv_layers(model)]


def rel_dist(stats, ref):
    """Relative Frobenius distance of D and of the mean, summed over layers."""
    d = sum((s[1] - r[1]).norm() for s, r in zip(stats, ref)) / sum(r[1].norm() for r in ref)
    m = sum((s[0] - r[0]).norm() for s, r in zip(stats, ref)) / sum(r[0].norm() for r in ref)
    return d.item(), m.item()


def final_analysis(deconv, train_pairs, val_pairs, args, scale):
    """Weights fixed at the last checkpoint: how far eval PSNR moves with the statistics alone.

    Recalibrates on ``--sets`` disjoint sets of N fresh training batches for each N of ``--final-recal``
    (their spread is the sampling noise of an estimate from N batches), and swaps the mean and D between
    the running statistics and the first recalibration on the most batches, to see which one matters.
    """
    fresh = CropSampler(train_pairs, args.gt_size, scale, args.batch_size, args.seed + 1)
    print(f'\nfinal checkpoint, weights fixed: running statistics {validate(deconv, val_pairs, scale):.2f}, '
          f'own statistics {validate(deconv, val_pairs, scale, own_statistics=True):.2f}', flush=True)
    first = {}
    for n in args.final_recal:
        values = []
        for _ in range(args.sets):
            model = recalibrated(deconv, [fresh()[0] for _ in range(n)])
            first.setdefault(n, model)
            values.append(validate(model, val_pairs, scale))
        print(f'recalibrated on {n:3d} fresh batches, {args.sets} disjoint sets: ' +
              ' '.join(f'{v:.2f}' for v in values) + f'  (spread {max(values) - min(values):.2f} dB)', flush=True)
    recal = stats_of(first[max(args.final_recal)])
    running = stats_of(deconv)
    print(f'distance of the running statistics to that recalibration: D / mean {rel_dist(running, recal)}')
    for label, stats in (('running mean, recalibrated D', [(r[0], c[1]) for r, c in zip(running, recal)]),
                         ('recalibrated mean, running D', [(c[0], r[1]) for r, c in zip(running, recal)])):
        print(f'{label}: {validate(with_statistics(deconv, stats), val_pairs, scale):.2f}', flush=True)


def late_swing(curve):
    late = curve[len(curve) // 2:]
    if len(late) < 2:
        return float('nan')
    return statistics.median(abs(b - a) for a, b in zip(late, late[1:]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--datasets', default='/work/shared/datasets')
    parser.add_argument('--iters', type=int, default=400)
    parser.add_argument('--val-every', type=int, default=25)
    parser.add_argument('--batch-size', type=int, default=16)
    parser.add_argument('--gt-size', type=int, default=64)
    parser.add_argument('--block', type=int, default=16)
    parser.add_argument('--recal', type=int, nargs='+', default=[4, 16], help='recalibration batch counts')
    parser.add_argument('--recal-fixed', type=int, nargs='+', default=[16, 64],
                        help='batch counts of recalibration on the first training batches, the same set each time')
    parser.add_argument('--estimates', nargs='+', default=list(ESTIMATES), choices=ESTIMATES,
                        help='which curves to measure (each costs a Set5 pass per validation)')
    parser.add_argument('--final-recal', type=int, nargs='+', default=[4, 16, 64],
                        help='batch counts of the final-checkpoint analysis')
    parser.add_argument('--sets', type=int, default=3, help='disjoint batch sets per count in that analysis')
    parser.add_argument('--final-only', action='store_true',
                        help='train the deconv arm only, without validations, then run the final analysis '
                        '(the same deconv trajectory: same seed and batches)')
    parser.add_argument('--ema-decay', type=float, default=0.98, help='decay of the weight average (estimate ema)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--threads', type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    scale = 2

    t0 = time.time()
    train_pairs = load_pairs(osp.join(args.datasets, 'T91'), scale)
    val_pairs = load_pairs(osp.join(args.datasets, 'Set5'), scale)
    print(f'data: {len(train_pairs)} T91 pairs, {len(val_pairs)} Set5 pairs ({time.time() - t0:.0f} s)', flush=True)

    torch.manual_seed(args.seed)
    base = SRCNN(upscale=scale)
    deconv = DeconvSRCNN(upscale=scale, deconv_layers=(2, ), block=args.block)
    deconv.load_state_dict(base.state_dict(), strict=False)  # the same initial weights
    print(deconv.conv2, flush=True)
    shadows = ShadowEstimates(deconv)
    arms = {'baseline': base, 'deconv': deconv}
    if args.final_only or 'baseline' not in args.estimates:
        del arms['baseline']
    opts = {name: torch.optim.Adam(net.parameters(), lr=1e-4) for name, net in arms.items()}
    averages = {name: clone(net) for name, net in arms.items()} if 'ema' in args.estimates else {}
    sampler = CropSampler(train_pairs, args.gt_size, scale, args.batch_size, args.seed)
    recent = []  # the last max(args.recal) training LQ batches
    first = []  # the first max(args.recal_fixed) training LQ batches, kept for the whole run
    step_time = {name: 0. for name in arms}
    curves = {}
    dists = {}

    def record(name, value):
        curves.setdefault(name, []).append(value)

    for it in range(1, args.iters + 1):
        lq, gt = sampler()
        recent = (recent + [lq])[-max(args.recal):]
        if len(first) < max(args.recal_fixed):
            first.append(lq)
        for name, net in arms.items():
            start = time.time()
            net.train()
            opts[name].zero_grad()
            F.l1_loss(net(lq), gt).backward()
            opts[name].step()
            step_time[name] += time.time() - start
            if name in averages:
                update_weight_average(averages[name], net, args.ema_decay)
        if it % args.val_every or args.final_only:
            continue
        start = time.time()
        want = set(args.estimates)
        if 'baseline' in want:
            record('baseline', validate(base, val_pairs, scale))
        ref_model = recalibrated(deconv, recent[-max(args.recal):])
        ref = stats_of(ref_model)
        candidates = {'running': stats_of(deconv)}
        if 'running' in want:
            record('running', validate(deconv, val_pairs, scale))
        for name in ('emaD m=0.01', 'emaCov'):
            if name in want:
                candidates[name] = shadows.statistics(name)
                record(name, validate(with_statistics(deconv, candidates[name]), val_pairs, scale))
        if 'recal' in want:
            for n in args.recal:
                model = ref_model if n == max(args.recal) else recalibrated(deconv, recent[-n:])
                candidates[f'recal {n}'] = stats_of(model)
                record(f'recal {n}', validate(model, val_pairs, scale))
        if 'fixed' in want:
            for n in args.recal_fixed:
                model = recalibrated(deconv, first[:n])
                candidates[f'fixed {n}'] = stats_of(model)
                record(f'fixed {n}', validate(model, val_pairs, scale))
        if 'fixed avgD' in want:
            n = max(args.recal_fixed)
            model = recalibrated(deconv, first[:n], average='deconv')
            candidates[f'fixed {n} avgD'] = stats_of(model)
            record(f'fixed {n} avgD', validate(model, val_pairs, scale))
        if 'avgD' in want:
            for n in args.recal:
                model = recalibrated(deconv, recent[-n:], average='deconv')
                candidates[f'recal {n} avgD'] = stats_of(model)
                record(f'recal {n} avgD', validate(model, val_pairs, scale))
        if 'ema' in want:
            if 'baseline' in averages:
                record('baseline ema', validate(averages['baseline'], val_pairs, scale))
            n = max(args.recal)
            model = recalibrated(averages['deconv'], recent[-n:], average='deconv')
            record(f'ema recal {n} avgD', validate(model, val_pairs, scale))
        if 'own' in want:
            record('own', validate(deconv, val_pairs, scale, own_statistics=True))
        if 'set5' in want:
            model = recalibrated(deconv, [lr[None] for _, lr in val_pairs])
            candidates['set5 pooled'] = stats_of(model)
            record('set5 pooled', validate(model, val_pairs, scale))
        for name, stats in candidates.items():
            dists.setdefault(name, []).append(rel_dist(stats, ref))
        print(f'iter {it:5d}  ' + '  '.join(f'{k} {v[-1]:.2f}' for k, v in curves.items()) +
              f'  (validation {time.time() - start:.0f} s)', flush=True)

    print('\nseconds per training step: ' + ', '.join(f'{k} {v / args.iters:.3f}' for k, v in step_time.items()))
    if args.final_only:
        final_analysis(deconv, train_pairs, val_pairs, args, scale)
        print(f'\ntotal {time.time() - t0:.0f} s')
        return
    print(f'\n{"estimate":18s} {"best":>6s} {"final":>6s} {"late swing":>10s}   PSNR every {args.val_every} iters')
    for name, curve in curves.items():
        print(f'{name:18s} {max(curve):6.2f} {curve[-1]:6.2f} {late_swing(curve):10.3f}   ' +
              ' '.join(f'{v:.2f}' for v in curve))
    ref_name = f'recal {max(args.recal)}'
    print(f'\ndistance to "{ref_name}" (median over validations, relative Frobenius): D / mean')
    for name, values in dists.items():
        if name != ref_name:
            print(f'{name:18s} {statistics.median(v[0] for v in values):.4f} / '
                  f'{statistics.median(v[1] for v in values):.4f}')
    final_analysis(deconv, train_pairs, val_pairs, args, scale)
    print(f'\ntotal {time.time() - t0:.0f} s')


if __name__ == '__main__':
    main()
