"""Validation curves: reading them from BasicSR's logs, the study's record, and statistics over seeds.

A curve is a list of ``(iteration, value)`` sorted by iteration. ``curves.csv`` holds one row per run and
validation: ``run, family, arm, lr, seed, diagnosis, iter, psnr, loss`` (``loss``: the training L1 that
BasicSR logged closest before that validation).
"""
import csv
import math
import statistics
from os import path as osp

CSV_FIELDS = ('run', 'family', 'arm', 'lr', 'seed', 'diagnosis', 'iter', 'psnr', 'loss')

# Two-sided 95% quantiles of Student's t by degrees of freedom (1 to 10), for intervals over a few seeds.
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}


def read_events(out, name, tag):
    """Scalar ``tag`` by step from the run's tensorboard events (the last value written at a step)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(osp.join(out, 'tb_logger', name), size_guidance={'scalars': 0})
    events.Reload()
    if tag not in events.Tags()['scalars']:
        return []
    return sorted({event.step: event.value for event in events.Scalars(tag)}.items())


def read_run(out, run, val_set, total_iter):
    """``(iteration, psnr, loss)`` rows of one run. BasicSR validates once more after its loop, one step
    past ``total_iter``, on the weights of the validation at ``total_iter``: that point is dropped."""
    psnr = [(it, v) for it, v in read_events(out, run.name, f'metrics/{val_set}/psnr') if it <= total_iter]
    loss = read_events(out, run.name, 'losses/l_pix')
    rows = []
    for it, value in psnr:
        before = [v for step, v in loss if step <= it]
        rows.append((it, value, before[-1] if before else math.nan))
    return rows


def write_csv(path, records):
    """``records``: ``{run: [(iteration, psnr, loss), ...]}``."""
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(CSV_FIELDS)
        for run, rows in sorted(records.items(), key=lambda item: item[0].name):
            for it, psnr, loss in rows:
                writer.writerow([run.name, run.family, run.arm, f'{run.lr:g}', run.seed, run.diagnosis, it,
                                 f'{psnr:.4f}', f'{loss:.5f}'])


def read_csv(path):
    """The runs of a ``curves.csv`` written by ``write_csv``: ``{run: [(iteration, psnr, loss), ...]}``."""
    from deconv_basicsr.experiments.design import Run
    records = {}
    with open(path, newline='') as f:
        for row in csv.DictReader(f):
            run = Run(row['family'], row['arm'], float(row['lr']), int(row['seed']), row['diagnosis'])
            records.setdefault(run, []).append((int(row['iter']), float(row['psnr']), float(row['loss'])))
    return records


def mean_sd(values):
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else math.nan)


def interval95(differences):
    """Mean and 95% t-interval half-width of paired differences (nan half-width with one value)."""
    mean, sd = mean_sd(differences)
    n = len(differences)
    return mean, (_T95.get(n - 1, 1.96) * sd / math.sqrt(n) if n > 1 else math.nan)


def mean_curve(curves):
    """Mean and sd over seeds at every iteration all ``curves`` share."""
    shared = sorted(set.intersection(*(set(dict(c)) for c in curves))) if curves else []
    points = [(it, *mean_sd([dict(c)[it] for c in curves])) for it in shared]
    return [(it, m) for it, m, _ in points], [(it, s) for it, _, s in points]


def final(curve):
    return curve[-1][1] if curve else math.nan


def first_reaching(curve, target):
    """First iteration at which ``curve`` reaches ``target`` (None if never)."""
    return next((it for it, value in curve if value >= target), None)


def late_gain(curve, fraction=0.2):
    """Gain of the curve over its last ``fraction`` of iterations: final value minus the value there."""
    if not curve:
        return math.nan
    start = curve[-1][0] * (1 - fraction)
    before = [value for it, value in curve if it <= start]
    return curve[-1][1] - before[-1] if before else math.nan


def late_swing(curve):
    """Median absolute change between consecutive validations over the second half of the curve."""
    late = [value for _, value in curve[len(curve) // 2:]]
    return statistics.median(abs(b - a) for a, b in zip(late, late[1:])) if len(late) > 1 else math.nan


def worst_drop(curve):
    """Largest fall of the curve below its running maximum (dB): how far validation collapsed."""
    best, drop = -math.inf, 0.0
    for _, value in curve:
        best = max(best, value)
        drop = max(drop, best - value)
    return drop


def verdict(mean, half_width, paper_sign):
    """'reproduced' when the 95% interval lies on the paper's side of zero (``paper_sign`` +1 or -1),
    'contradicted' when on the other side, else 'inconclusive at this scale'."""
    if math.isnan(half_width):
        return 'inconclusive at this scale (one seed)'
    low, high = mean - half_width, mean + half_width
    if (low > 0 and paper_sign > 0) or (high < 0 and paper_sign < 0):
        return 'reproduced'
    if (low > 0 and paper_sign < 0) or (high < 0 and paper_sign > 0):
        return 'contradicted'
    return 'inconclusive at this scale'
