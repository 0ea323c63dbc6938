"""Validation curves: reading them from BasicSR's logs, the study's record, and statistics over seeds.

A curve is a list of ``(iteration, value)`` sorted by iteration. ``curves.csv`` holds one row per run and
validation: ``run, family, arm, lr, iters, seed, iter, psnr, psnr_running, loss`` (``psnr_running``: the
deconvolved arm validated on its moving averages before recalibration, empty for a baseline; ``loss``: the
training L1 that BasicSR logged closest before that validation).
"""
import csv
import math
import statistics
from os import path as osp

from deconv_basicsr.models.deconv_sr_model import RUNNING_STATS_SUFFIX

CSV_FIELDS = ('run', 'family', 'arm', 'lr', 'iters', 'seed', 'iter', 'psnr', 'psnr_running', 'loss')

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


def read_run(out, name, iters, val_set):
    """``(iteration, psnr, psnr_running, loss)`` rows of the run ``name`` of ``iters`` iterations
    (``psnr_running`` nan where not validated so). BasicSR validates once more after its loop, one step past the last iteration, on the weights of the
    validation at the last iteration: that point is dropped."""
    psnr = [(it, v) for it, v in read_events(out, name, f'metrics/{val_set}/psnr') if it <= iters]
    running = dict(read_events(out, name, f'metrics/{val_set}{RUNNING_STATS_SUFFIX}/psnr'))
    loss = read_events(out, name, 'losses/l_pix')
    rows = []
    for it, value in psnr:
        before = [v for step, v in loss if step <= it]
        rows.append((it, value, running.get(it, math.nan), before[-1] if before else math.nan))
    return rows


def write_csv(path, records):
    """``records``: ``{run: [(iteration, psnr, psnr_running, loss), ...]}``."""
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(CSV_FIELDS)
        for run, rows in sorted(records.items(), key=lambda item: item[0].name):
            for it, psnr, running, loss in rows:
                writer.writerow([run.name, run.family, run.arm, f'{run.lr:g}', run.iters, run.seed, it,
                                 f'{psnr:.4f}', '' if math.isnan(running) else f'{running:.4f}', f'{loss:.5f}'])


def read_csv(path):
    """The runs of a ``curves.csv`` written by ``write_csv``: ``{run: [(iteration, psnr, psnr_running, loss)]}``.

    Records written before the study had an ``iters`` column (its commits up to 4ba67ab) are read too: a run's
    length is then its last iteration, and the runs of its diagnosis (a ``diagnosis`` column) are left out.
    """
    from deconv_basicsr.experiments.design import Run
    rows_by_key = {}
    with open(path, newline='') as f:
        for row in csv.DictReader(f):
            if row.get('diagnosis'):
                continue
            key = row['family'], row['arm'], float(row['lr']), row.get('iters'), int(row['seed'])
            rows_by_key.setdefault(key, []).append((int(row['iter']), float(row['psnr']),
                                                    float(row.get('psnr_running') or 'nan'), float(row['loss'])))
    return {Run(family, arm, lr, int(iters) if iters else rows[-1][0], seed): rows
            for (family, arm, lr, iters, seed), rows in rows_by_key.items()}


def drift(reference, records):
    """How far the runs of ``records`` moved from the same runs in ``reference`` (both ``{run: rows}``): per
    run, ``(validations compared, first iteration that differs or None, largest |difference|, final
    difference)`` of the validation PSNR."""
    result = {}
    for run, rows in records.items():
        if run not in reference:
            continue
        old = {it: psnr for it, psnr, *_ in reference[run]}
        pairs = [(it, psnr - old[it]) for it, psnr, *_ in rows if it in old]
        if pairs:
            first = next((it for it, d in pairs if d != 0), None)
            result[run] = (len(pairs), first, max(abs(d) for _, d in pairs), pairs[-1][1])
    return result


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


def best_rate(finals_by_rate):
    """The rate whose final values (``{rate: iterable of finals}``) are highest on average; None if no rate
    has a value. The choice made after seeing the runs, on validation data."""
    means = {lr: mean_sd(finals)[0] for lr, finals in finals_by_rate.items()}
    means = {lr: m for lr, m in means.items() if not math.isnan(m)}
    return max(means, key=means.get) if means else None


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


def paired_p(differences):
    """Two-sided p-value of the paired t-test that the mean of ``differences`` is zero (nan below 2 values).

    When all differences are equal (iterations to a threshold are multiples of the validation interval, so
    this happens) the t statistic is undefined; the p-value is then the exact sign-flip test's: 1 for zero
    differences, else 2 / 2**n (two of the 2**n sign patterns are as extreme), so that n equal differences
    weigh as much as n seeds can: 0.5 with 2 seeds, 0.0078 with 8.
    """
    from scipy import stats

    values = [d for d in differences if not math.isnan(d)]
    if len(values) < 2:
        return math.nan
    mean, sd = mean_sd(values)
    if sd == 0:
        return 1.0 if mean == 0 else 2.0 / 2 ** len(values)
    t = mean / (sd / math.sqrt(len(values)))
    return float(2 * stats.t.sf(abs(t), len(values) - 1))


ALPHA = 0.05  # the study's level: a difference is decided when its Holm-adjusted p-value is below it


def is_decided(adjusted_p, alpha=ALPHA):
    """The study's rule: a difference is decided when its Holm-adjusted p-value is below ``alpha``."""
    return not math.isnan(adjusted_p) and adjusted_p < alpha


def format_spread(mean, sd=math.nan, digits=2):
    """``mean ± sd`` (the mean alone without a spread; '–' without a mean)."""
    if math.isnan(mean):
        return '–'
    return f'{mean:.{digits}f}' + (f' ± {sd:.{digits}f}' if not math.isnan(sd) else '')


def format_difference(mean, half, digits=2):
    """``+mean ± half``, signed (the mean alone without a half-width; '–' without a mean)."""
    if math.isnan(mean):
        return '–'
    return f'{mean:+.{digits}f}' + (f' ± {half:.{digits}f}' if not math.isnan(half) else '')


def format_p(value):
    """Three decimals; four where three would round across ``ALPHA`` (0.0497 is not printed 0.050)."""
    if math.isnan(value):
        return '–'
    if value < 0.001:
        return '<0.001'
    return f'{value:.4f}' if round(value, 3) == ALPHA else f'{value:.3f}'


def holm(p_values):
    """Holm's step-down adjustment of ``p_values`` (a list; nan entries stay nan and do not count)."""
    ranked = sorted((p, i) for i, p in enumerate(p_values) if not math.isnan(p))
    adjusted, running = [math.nan] * len(p_values), 0.0
    for rank, (p, i) in enumerate(ranked):
        running = max(running, min(1.0, (len(ranked) - rank) * p))
        adjusted[i] = running
    return adjusted


def detectable_effect(sd, n, power=0.8, alpha=ALPHA):
    """The smallest true mean difference a two-sided paired t-test at ``alpha`` over ``n`` pairs detects
    with probability ``power``, when the differences spread with standard deviation ``sd``."""
    from scipy import optimize, stats

    if n < 2 or math.isnan(sd):
        return math.nan
    if sd == 0:
        return 0.0
    df, critical = n - 1, stats.t.ppf(1 - alpha / 2, n - 1)

    def shortfall(effect):
        shift = effect * math.sqrt(n) / sd
        wrong_side = stats.nct.cdf(-critical, df, shift)  # nan far out in the tail, where it is 0
        return stats.nct.sf(critical, df, shift) + (0.0 if math.isnan(wrong_side) else wrong_side) - power

    return float(optimize.brentq(shortfall, 0.0, 40 * sd / math.sqrt(n)))
