"""Why DeconvSRCNN's validation curve swings: evaluation statistics compared on the same checkpoints.

SRCNN and DeconvSRCNN (only conv2 deconvolved) train side by side on the same batches from the same initial
weights (x2, random crops with flips and rotations, Adam at ``lr``, L1) and are validated every ``val_every``
iterations (Y-channel PSNR, border 2). In training mode a FastDeconv layer whitens with each batch's own
statistics, so the training trajectory does not depend on how the eval statistics are estimated, and runs
with the same seed follow the same trajectory. Each deconv checkpoint is validated with every estimate
asked for (``Settings.estimates``):

- ``baseline``:         the plain SRCNN, for scale.
- ``running``:          the layer's buffers: EMA of the batch mean and of D (momentum 0.1, from 0 and I).
- ``emaD m=0.01``:      EMA of the mean and of D with momentum 0.01.
- ``emaCov``:           EMA (momentum 0.1) of the mean and of the covariance, D = whitening of that EMA.
- ``recal``:            recalibrated on the last N training batches with the current weights, pooled
                        covariance (``recalibrate_deconv_stats(average='cov')``), for each N of ``recal``.
- ``avgD``:             the same batches, averaging the batch D's (``average='deconv'``).
- ``fixed``, ``fixed avgD``: the same on the first N training batches (``recal_fixed``), the same set
                        every time (``fixed avgD`` on the most of them only).
- ``ema``:              an exponential moving average of the weights (``ema_decay``, BasicSR's ``ema_decay``:
                        parameters averaged, buffers copied), recalibrated on the last N batches averaging
                        D, for each N of ``recal``; with ``baseline`` also the baseline's weight average.
- ``own``:              every validation image whitened with its own statistics.
- ``val pooled``:       statistics pooled over the validation images (a diagnostic of the crop/whole-image
                        gap, not a usable estimate).

Then, with the last weights fixed, how much the PSNR moves with the statistics alone (``final_analysis``).
"""
import contextlib
import copy
import re
import statistics
from dataclasses import dataclass
from functools import partial

import torch

from deconv_basicsr.archs.deconv_srcnn_arch import DeconvSRCNN
from deconv_basicsr.archs.srcnn_arch import SRCNN
from deconv_basicsr.experiments import curves as cv
from deconv_basicsr.experiments.inprocess import Lockstep, RandomCrops, mean_psnr, seeded
from deconv_basicsr.layers import FastDeconv, recalibrate_deconv_stats

SCALE = 2
ESTIMATES = ('baseline', 'running', 'emaD m=0.01', 'emaCov', 'recal', 'avgD', 'fixed', 'fixed avgD', 'ema', 'own',
             'val pooled')


@dataclass
class Settings:
    iters: int = 400
    val_every: int = 25
    batch_size: int = 16
    gt_size: int = 64
    lr: float = 1e-4  # Adam's
    block: int = 16
    recal: tuple = (4, 16)  # recalibration batch counts (the last N training batches)
    recal_fixed: tuple = (16, 64)  # the first N training batches, the same set every time
    estimates: tuple = ESTIMATES
    final_recal: tuple = (4, 16, 64)  # batch counts of the final analysis
    sets: int = 3  # disjoint batch sets per count in the final analysis
    final_only: bool = False  # train the deconv arm only, no validations, then the final analysis
    ema_decay: float = 0.98
    seed: int = 0


def deconv_layers(model):
    return [m for m in model.modules() if isinstance(m, FastDeconv)]


def stats_of(model):
    """The running (mean, D) of every FastDeconv layer, in float64."""
    return [(layer.running_mean.double().clone(), layer.running_deconv.double().clone())
            for layer in deconv_layers(model)]


def with_statistics(model, stats):
    """A copy of ``model`` whose FastDeconv layers hold the given (mean, D) pairs, one per layer."""
    model = copy.deepcopy(model)
    for layer, (mean, deconv) in zip(deconv_layers(model), stats):
        layer.running_mean.copy_(mean)
        layer.running_deconv.copy_(deconv)
    return model


def recalibrated(model, batches, average):
    model = copy.deepcopy(model)
    recalibrate_deconv_stats(model, batches, average=average)
    return model


def relative_distance(stats, ref):
    """Relative Frobenius distances of D and of the mean, summed over layers."""
    d = sum((s[1] - r[1]).norm() for s, r in zip(stats, ref)) / sum(r[1].norm() for r in ref)
    m = sum((s[0] - r[0]).norm() for s, r in zip(stats, ref)) / sum(r[0].norm() for r in ref)
    return d.item(), m.item()


@torch.no_grad()
def update_weight_average(average, model, decay):
    """BasicSR's ``model_ema`` step: parameters averaged, buffers copied."""
    for a, p in zip(average.parameters(), model.parameters()):
        a.mul_(decay).add_(p, alpha=1 - decay)
    for a, b in zip(average.buffers(), model.buffers()):
        a.copy_(b)


def psnr_with_own_statistics(model, pairs):
    """Mean PSNR when every FastDeconv whitens each image with that image's own statistics (``recording``:
    nothing in the model changes)."""
    model.eval()
    with contextlib.ExitStack() as stack:
        for layer in deconv_layers(model):
            layer.train()
            stack.enter_context(layer.recording([]))
        try:
            return mean_psnr(model, pairs, SCALE)
        finally:
            model.eval()


class ShadowEstimates:
    """Other moving averages of a model's FastDeconv statistics, fed by the batches it trains on.

    ``emaD m=0.01``: the mean and D averaged with momentum 0.01; ``emaCov``: the mean and the covariance
    averaged with the layer's momentum 0.1, D the layer's whitening of that average. Both start, as the
    layer does, at 0 and I.
    """

    def __init__(self, model):
        self.layers = deconv_layers(model)
        zero = [torch.zeros_like(layer.running_mean, dtype=torch.float64) for layer in self.layers]
        eye = [torch.eye(layer.num_features, dtype=torch.float64).expand_as(layer.running_deconv).clone()
               for layer in self.layers]
        self.slow = [(m.clone(), e.clone()) for m, e in zip(zero, eye)]  # (mean, D)
        self.cov = [(m.clone(), e.clone()) for m, e in zip(zero, eye)]  # (mean, covariance)

    @contextlib.contextmanager
    def feeding(self):
        """Within: every training-mode forward of the layers updates the averages with the statistics of its
        input, i.e. the batch statistics that forward whitens with (a forward pre-hook per layer)."""
        handles = [layer.register_forward_pre_hook(partial(self._update, i)) for i, layer in enumerate(self.layers)]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    @torch.no_grad()
    def _update(self, i, layer, inputs):
        if not layer.training:
            return
        x = inputs[0].detach()
        mean, cov = layer.batch_moments(x.to(torch.promote_types(x.dtype, torch.float32)))
        deconv = layer.whitening(cov)
        m, d = self.slow[i]
        self.slow[i] = (0.99 * m + 0.01 * mean.double(), 0.99 * d + 0.01 * deconv.double())
        m, c = self.cov[i]
        self.cov[i] = (0.9 * m + 0.1 * mean.double(), 0.9 * c + 0.1 * cov.double())

    def statistics(self, name):
        """[(mean, D)] per layer of the estimate ``name``."""
        if name == 'emaD m=0.01':
            return self.slow
        return [(m, layer.whitening(c)) for (m, c), layer in zip(self.cov, self.layers)]


class EvalStatsRun:
    """The run: training in lockstep, the validation of every estimate, the final analysis."""

    def __init__(self, train_pairs, val_pairs, settings, log=print):
        s = self.settings = settings
        self.train_pairs, self.val_pairs, self.log = train_pairs, val_pairs, log
        self.want = set(s.estimates)
        self.deconv = seeded(lambda: DeconvSRCNN(upscale=SCALE, deconv_layers=(2, ), block=s.block), s.seed)
        self.networks = {'deconv': self.deconv}
        if 'baseline' in self.want and not s.final_only:
            self.networks['baseline'] = seeded(lambda: SRCNN(upscale=SCALE), s.seed)
        self.trainer = Lockstep(self.networks, lr=s.lr)
        self.averages = {name: copy.deepcopy(n) for name, n in self.networks.items()} if 'ema' in self.want else {}
        shadowed = not s.final_only and self.want & {'emaD m=0.01', 'emaCov'}
        self.shadows = ShadowEstimates(self.deconv) if shadowed else None
        self.recent, self.first = [], []  # the last max(recal) and first max(recal_fixed) training LQ batches
        self.curves, self.distances = {}, {}  # label -> [(iteration, psnr)]; label -> [(D, mean) distance]

    def train(self):
        s = self.settings
        self.log(str(self.deconv.conv2))
        crops = RandomCrops(self.train_pairs, s.gt_size, SCALE, s.batch_size, s.seed)
        for it in range(1, s.iters + 1):
            lq, gt = crops()
            self.recent = (self.recent + [lq])[-max(s.recal):]
            if len(self.first) < max(s.recal_fixed):
                self.first.append(lq)
            with self.shadows.feeding() if self.shadows else contextlib.nullcontext():
                self.trainer.step(lq, gt)
            for name, average in self.averages.items():
                update_weight_average(average, self.networks[name], s.ema_decay)
            if it % s.val_every == 0 and not s.final_only:
                self.validate(it)
        self.log('seconds per training step: ' +
                 ', '.join(f'{name} {seconds / s.iters:.3f}' for name, seconds in self.trainer.seconds.items()))

    def statistics_estimates(self, last):
        """(label, copy of the deconv network holding that estimate) pairs; ``last``: the network
        recalibrated on the last max(recal) batches, pooled covariance."""
        s, deconv, want = self.settings, self.deconv, self.want
        if 'running' in want:
            yield 'running', deconv
        for name in ('emaD m=0.01', 'emaCov'):
            if name in want:
                yield name, with_statistics(deconv, self.shadows.statistics(name))
        if 'recal' in want:
            for n in s.recal:
                yield f'recal {n}', last if n == max(s.recal) else recalibrated(deconv, self.recent[-n:], 'cov')
        if 'fixed' in want:
            for n in s.recal_fixed:
                yield f'fixed {n}', recalibrated(deconv, self.first[:n], 'cov')
        if 'fixed avgD' in want:
            n = max(s.recal_fixed)
            yield f'fixed {n} avgD', recalibrated(deconv, self.first[:n], 'deconv')
        if 'avgD' in want:
            for n in s.recal:
                yield f'recal {n} avgD', recalibrated(deconv, self.recent[-n:], 'deconv')
        if 'val pooled' in want:
            yield 'val pooled', recalibrated(deconv, [lq[None] for lq, _ in self.val_pairs], 'cov')

    def other_networks(self):
        """(label, network) pairs of the estimates with other weights: the baseline, the weight averages."""
        if 'baseline' in self.want:
            yield 'baseline', self.networks['baseline']
        if 'ema' in self.want:
            if 'baseline' in self.averages:
                yield 'baseline ema', self.averages['baseline']
            for n in self.settings.recal:
                yield f'ema recal {n} avgD', recalibrated(self.averages['deconv'], self.recent[-n:], 'deconv')

    def validate(self, it):
        """PSNR of every estimate at iteration ``it``, and how far the statistics of each lie from those
        recalibrated on the last max(recal) batches (pooled covariance)."""
        last = recalibrated(self.deconv, self.recent, 'cov')
        reference = stats_of(last)

        def record(label, psnr):
            self.curves.setdefault(label, []).append((it, psnr))

        for label, model in self.statistics_estimates(last):
            record(label, mean_psnr(model.eval(), self.val_pairs, SCALE))
            self.distances.setdefault(label, []).append(relative_distance(stats_of(model), reference))
        for label, model in self.other_networks():
            record(label, mean_psnr(model.eval(), self.val_pairs, SCALE))
        if 'own' in self.want:
            record('own', psnr_with_own_statistics(self.deconv, self.val_pairs))
        self.log(f'iter {it:5d}  ' + '  '.join(f'{label} {curve[-1][1]:.2f}' for label, curve in self.curves.items()))

    def summary(self):
        """Each curve, its best and late swing, and the median distances to the reference estimate."""
        s = self.settings
        lines = [f'{"estimate":18s} {"best":>6s} {"final":>6s} {"late swing":>10s}   PSNR every {s.val_every} iters']
        for label, curve in self.curves.items():
            values = [v for _, v in curve]
            lines.append(f'{label:18s} {max(values):6.2f} {values[-1]:6.2f} {cv.late_swing(curve):10.3f}   ' +
                         ' '.join(f'{v:.2f}' for v in values))
        reference = f'recal {max(s.recal)}'
        lines.append(f'\ndistance to "{reference}" (median over validations, relative Frobenius): D / mean')
        for label, values in self.distances.items():
            if label != reference:
                lines.append(f'{label:18s} {statistics.median(v[0] for v in values):.4f} / '
                             f'{statistics.median(v[1] for v in values):.4f}')
        return '\n'.join(lines)

    def final_analysis(self):
        """Weights fixed at the last checkpoint: how far eval PSNR moves with the statistics alone.

        Recalibrates on ``sets`` disjoint sets of N fresh training batches for each N of ``final_recal``
        (their spread is the sampling noise of an estimate from N batches), and swaps the mean and D between
        the running statistics and the first recalibration on the most batches, to see which one matters.
        """
        s, deconv, val = self.settings, self.deconv, self.val_pairs
        fresh = RandomCrops(self.train_pairs, s.gt_size, SCALE, s.batch_size, s.seed + 1)
        deconv.eval()
        self.log(f'final checkpoint, weights fixed: running statistics {mean_psnr(deconv, val, SCALE):.2f}, '
                 f'own statistics {psnr_with_own_statistics(deconv, val):.2f}')
        first = {}
        for n in s.final_recal:
            values = []
            for _ in range(s.sets):
                model = recalibrated(deconv, [fresh()[0] for _ in range(n)], 'cov')
                first.setdefault(n, model)
                values.append(mean_psnr(model.eval(), val, SCALE))
            self.log(f'recalibrated on {n:3d} fresh batches, {s.sets} disjoint sets: ' +
                     ' '.join(f'{v:.2f}' for v in values) + f'  (spread {max(values) - min(values):.2f} dB)')
        recal, running = stats_of(first[max(s.final_recal)]), stats_of(deconv)
        self.log('distance of the running statistics to that recalibration: D / mean '
                 '{:.4f} / {:.4f}'.format(*relative_distance(running, recal)))
        for label, stats in (('running mean, recalibrated D', [(r[0], c[1]) for r, c in zip(running, recal)]),
                             ('recalibrated mean, running D', [(c[0], r[1]) for r, c in zip(running, recal)])):
            self.log(f'{label}: {mean_psnr(with_statistics(deconv, stats).eval(), val, SCALE):.2f}')


def run(train_pairs, val_pairs, settings, log=print):
    """Train, validate every estimate, print the summary and the final analysis; returns the run."""
    study = EvalStatsRun(train_pairs, val_pairs, settings, log)
    study.train()
    if not settings.final_only:
        log('\n' + study.summary() + '\n')
    study.final_analysis()
    return study


def read_output(path):
    """The curves in the summary table of a saved ``eval_stats_study.py`` output: ``{label: [(iteration,
    psnr)]}``, the iterations from the table's 'PSNR every N iters' header."""
    with open(path) as f:
        lines = f.read().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith('estimate '))
    every = int(re.search(r'PSNR every (\d+) iters', lines[start]).group(1))
    curves = {}
    for line in lines[start + 1:]:
        if not line.strip():
            break
        words = line.split()
        first = next(i for i, word in enumerate(words) if _is_decimal(word))  # labels hold no decimals
        values = [float(word) for word in words[first + 3:]]  # after best, final and late swing
        curves[' '.join(words[:first])] = [(every * (i + 1), value) for i, value in enumerate(values)]
    return curves


def _is_decimal(word):
    try:
        float(word)
    except ValueError:
        return False
    return '.' in word


def seeds_summary(outputs, compare=()):
    """Markdown over runs of several seeds (``outputs``: ``read_output`` of each): every estimate's best,
    final, late swing and worst fall, mean over the seeds; then, for each ``(a, b)`` of ``compare``, a − b
    paired by seed, mean ± 95% half-width (Student t)."""
    measures = {'best': lambda c: max(v for _, v in c), 'final': cv.final, 'late swing': cv.late_swing,
                'worst fall': cv.worst_drop}
    labels = [label for label in outputs[0] if all(label in out for out in outputs)]

    def per_seed(label, measure):
        return [measures[measure](out[label]) for out in outputs]

    lines = [f'Mean over {len(outputs)} seeds (dB):', '', '| estimate | ' + ' | '.join(measures) + ' |',
             '|---|' + '---|' * len(measures)]
    for label in labels:
        lines.append(f'| {label} | ' + ' | '.join(f'{statistics.fmean(per_seed(label, m)):.2f}' for m in measures)
                     + ' |')
    if compare:
        lines += ['', 'Paired by seed, mean ± 95% half-width (dB; per seed in brackets):', '',
                  '| difference | ' + ' | '.join(measures) + ' |', '|---|' + '---|' * len(measures)]
    for a, b in compare:
        cells = []
        for m in measures:
            differences = [x - y for x, y in zip(per_seed(a, m), per_seed(b, m))]
            mean, half = cv.interval95(differences)
            cells.append(f'{mean:+.2f} ± {half:.2f} (' + ', '.join(f'{d:+.2f}' for d in differences) + ')')
        lines.append(f'| {a} − {b} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'
