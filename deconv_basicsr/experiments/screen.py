"""The screened search for deconvolution that stays stable at high learning rates (docs/stability.md).

Every candidate is one of the study's runs of a family (SRCNN or EDSR) changed by a few option keys: the
deconvolved arm with a FastDeconv setting or a training option, beside the baseline and the unchanged
deconvolved arm. All train with the study's options, and a seed gives every candidate the same initial
weights and batches, so candidates are compared seed by seed. The runs of ``baseline`` and ``deconv`` are
the study's runs, with the study's names: a screen in the study's folder (after the study) reuses them, and
one given the study's record (its ``curves.csv``, trained on the same data) takes the curves that record holds
whole instead of training them again, as the study itself does. Only validation decides (the test sets are
not used).

The record (``curves.csv`` with a ``candidate`` column, ``summary.md``, a plot per rate) is computed from the
runs' BasicSR logs; rerunning continues where it stopped and rewrites it.
"""
import csv
import math
import os
import textwrap
from copy import deepcopy
from os import path as osp

from deconv_basicsr.experiments import curves as cv

#: name -> (what it changes, whether it starts from the deconvolved arm (else the baseline), option overrides).
#: The settings follow the mechanism measured in docs/stability.md for DeconvSRCNN's conv2: its total gradient
#: norm has a median of about 1.7 (the clip bites on most steps); the batch whitening changes by about 7 % per
#: step (4 batches pooled halve that noise); its input covariance has a condition number of 3-4e6 (shrinkage
#: 0.1 bounds it by 1 + 9 d). DeconvEDSR's total gradient norm is about 6 times smaller (medians 0.26-0.30 over its
#: first 300 steps at Adam 5e-4, largest 0.85: docs/study/stability/edsr_probe): a clip at 1 never acts on it; one
#: at 0.2, below every seed's median, acts on most steps, as 1 does on DeconvSRCNN.
CANDIDATES = {
    'baseline': ('the baseline', False, {}),
    'deconv': ('the deconvolved arm, unchanged', True, {}),
    'warmup': ('learning rate warmed up linearly over the first 200 iterations', True,
               {'train': {'warmup_iter': 200}}),
    'clip': ('gradients clipped to a total norm of 1', True, {'train': {'grad_clip_norm': 1.0}}),
    'clip0.2': ('gradients clipped to a total norm of 0.2 (clip scaled to DeconvEDSR)', True,
                {'train': {'grad_clip_norm': 0.2}}),
    'shrink': ('covariance shrunk toward tr/d I by 0.1', True, {'network_g': {'shrinkage': 0.1}}),
    'pool4': ('statistics of the last 4 batches pooled', True, {'network_g': {'stats_batches': 4}}),
    'ns2': ('partial whitening: 2 Newton-Schulz steps instead of 5', True, {'network_g': {'n_iter': 2}}),
    'slow_deconv': ("the deconvolved layers' parameters at 0.1 times the learning rate", True,
                    {'train': {'deconv_lr_scale': 0.1}}),
}
BASELINE, UNCHANGED = 'baseline', 'deconv'
SCREENED = ('warmup', 'clip', 'shrink', 'pool4', 'ns2', 'slow_deconv')  # the screen's candidates (the default)
FIELDS = ('run', 'family', 'candidate', 'lr', 'iters', 'seed', 'iter', 'psnr', 'loss')
FALL = 1.0  # dB below the running best that counts as a fall
EARLY = 0.05  # the early point: this fraction of the iterations, as in the study
THRESHOLD = 0.5  # dB below the baseline's final mean: the target of iterations to threshold


def _run(family, candidate, lr, iters, seed):
    """The study's run a candidate starts from."""
    from deconv_basicsr.experiments.design import PAIRS, Run

    return Run(family, PAIRS[family][CANDIDATES[candidate][1]], lr, iters, seed)


def run_name(family, candidate, lr, iters, seed):
    """The study's name for an unchanged arm's run, else the candidate's."""
    if not CANDIDATES[candidate][2]:
        return _run(family, candidate, lr, iters, seed).name
    return f'{family}_{candidate}_lr{lr:g}_it{iters}_s{seed}'


def label(family, candidate):
    """The arm's label (``SRCNN``, ``DeconvSRCNN (conv2)``) for an unchanged arm, else the candidate's name."""
    from deconv_basicsr.experiments.design import ARM_LABELS, PAIRS

    if CANDIDATES[candidate][2]:
        return candidate
    return ARM_LABELS[PAIRS[family][CANDIDATES[candidate][1]]]


def _merge(options, overrides):
    for key, value in overrides.items():
        if isinstance(value, dict):
            _merge(options.setdefault(key, {}), value)
        else:
            options[key] = value


def candidate_options(preset, family, candidate, lr, iters, seed, datasets):
    """BasicSR options of ``candidate``'s run: the study's options of its arm, with the candidate's changes."""
    from deconv_basicsr.experiments.design import train_options

    opt = train_options(preset, _run(family, candidate, lr, iters, seed), datasets)
    _merge(opt, deepcopy(CANDIDATES[candidate][2]))
    opt['name'] = run_name(family, candidate, lr, iters, seed)
    return opt


def study_length(preset, family, lr):
    """The study's length of its runs of ``family`` at ``lr`` (the shortest, if several)."""
    lengths = [c.iters for c in preset.conditions if (c.family, c.lr) == (family, lr)]
    if not lengths:
        raise ValueError(f'the study has no {family} run at lr {lr:g}: pass --iters')
    return min(lengths)


def run_screen(out, record, candidates=SCREENED, seeds=(0, 1, 2), lrs=(1e-3, ), iters=None, data=None,
               family='srcnn', preset_name='cpu', jobs=2, threads=1, study_record=None, train=True, log=print):
    """Train every candidate at every rate in ``lrs`` with every seed under ``out`` (finished runs are
    skipped), then write the record into ``record``. Returns the summary (Markdown).

    Args:
        out (str): Folder of the runs.
        record (str): Folder of the record.
        candidates (Sequence[str]): Names of ``CANDIDATES`` (default: the screen's); ``baseline`` and ``deconv``
            are always added.
        seeds (Sequence[int]): Seeds.
        lrs (Sequence[float]): Adam learning rates.
        iters (int | None): Iterations; None: the study's length at each rate.
        data (str | None): Folder of HR image folders; None: the embedded dataset.
        family (str): 'srcnn' or 'edsr': the study's pair whose deconvolved arm the candidates change.
        preset_name (str): The study preset whose options the runs take ('cpu'; 'smoke' for a code-path check).
        jobs, threads: Runs trained at once, and threads per run.
        study_record (str | None): The study's ``curves.csv`` on the same data and preset: the runs of
            ``baseline`` and ``deconv`` it holds whole are taken from it, not trained.
        train (bool): False: train nothing, write a record of the runs finished so far (a partial one).
        log (callable): Progress lines.
    """
    from deconv_basicsr.experiments.design import PRESETS
    from deconv_basicsr.experiments.runner import is_finished, train_all
    from deconv_basicsr.experiments.study import prepare_data, read_records

    unknown = [name for name in candidates if name not in CANDIDATES]
    if unknown:
        raise ValueError(f'unknown candidates {unknown}; choose among {list(CANDIDATES)}')
    candidates = list(dict.fromkeys([BASELINE, UNCHANGED, *candidates]))
    preset, out = PRESETS[preset_name], osp.abspath(out)
    if family not in preset.families:
        raise ValueError(f'the {preset_name} preset has no {family} runs; it has {preset.families}')
    datasets = prepare_data(preset, out, data)
    lengths = {lr: iters or study_length(preset, family, lr) for lr in lrs}
    options = {(candidate, lr, lengths[lr], seed):
               candidate_options(preset, family, candidate, lr, lengths[lr], seed, datasets)
               for lr in lrs for seed in seeds for candidate in candidates}
    val_set = datasets['val']['name']
    recorded = cv.read_csv(study_record) if study_record else None

    def study_curves():
        """``{key: rows}`` of the unchanged arms' runs finished under ``out`` or held whole by the study record."""
        runs = {key: _run(family, *key) for key in options if not CANDIDATES[key[0]][2]}
        found = read_records(out, preset, list(runs.values()), val_set, recorded)
        return {key: found[run] for key, run in runs.items() if run in found}

    studied = study_curves()
    from_record = sorted(key for key in studied if not is_finished(out, options[key]['name'], key[2]))
    log(f'{len(options)} runs: {len(candidates)} candidates x {len(seeds)} seeds x {len(lrs)} rates, under {out}; '
        f'{len(from_record)} taken from the study record')
    if train:
        train_all(out, [opt for key, opt in options.items() if key not in studied], jobs, threads, desc='screen')
    records = {key: cv.read_run(out, opt['name'], key[2], val_set) for key, opt in options.items()
               if CANDIDATES[key[0]][2] and is_finished(out, opt['name'], key[2])}
    records.update(study_curves())  # the unchanged arms: finished under out now, or from the study record
    records = {key: [(it, psnr, loss) for it, psnr, _, loss in rows] for key, rows in records.items()}
    notes = [f"Runs of the baseline and the unchanged arm taken from the study's record `{study_record}`, not "
             f'trained here: {len(from_record)}.'] if from_record else []
    if not (preset.verdicts and data is not None):
        notes.append(f'A code-path check (the {preset_name} preset' +
                     (', the embedded dataset' if data is None else '') + '): its figures decide nothing.')
    note = ' '.join(notes)
    return write_record(record, family, records, candidates, len(options), note)


def write_record(record, family, records, candidates, planned, note=''):
    """``curves.csv``, a plot per rate and ``summary.md`` into ``record`` from ``records``:
    ``{(candidate, lr, iters, seed): [(iteration, psnr, loss), ...]}``. Returns the summary."""
    os.makedirs(record, exist_ok=True)
    with open(osp.join(record, 'curves.csv'), 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(FIELDS)
        for key in sorted(records, key=lambda key: (key[1], candidates.index(key[0]), key[3])):
            for it, psnr, loss in records[key]:
                writer.writerow([run_name(family, *key), family, key[0], f'{key[1]:g}', key[2], key[3], it,
                                 f'{psnr:.4f}', f'{loss:.5f}'])
    conditions = sorted({(lr, iters) for _, lr, iters, _ in records})
    for lr, iters in conditions:
        _plot(records, family, candidates, lr, iters, osp.join(record, _plot_name(lr, iters)))
    lines = [f'# Screened search: {label(family, UNCHANGED)} at high learning rates', '',
             f'Runs in this record: {len(records)} of {planned}. Every figure comes from `curves.csv` beside this '
             'file (validation Y-PSNR). Written by `python scripts/stability_search.py` '
             '(docs/stability.md).' + (f' {note}' if note else ''), '']
    for lr, iters in conditions:
        lines += summarise(records, family, candidates, lr, iters)
    lines += best_rate_lines(records, family, candidates)
    text = '\n'.join(lines) + '\n'
    with open(osp.join(record, 'summary.md'), 'w') as f:
        f.write(text)
    return text


def _plot_name(lr, iters):
    return f'screen_lr{lr:g}_it{iters}.png'


def _curves(records, candidate, lr, iters):
    """``{seed: [(iteration, psnr)]}`` of a candidate."""
    return {seed: [(it, psnr) for it, psnr, _ in rows] for (name, r, n, seed), rows in records.items()
            if (name, r, n) == (candidate, lr, iters)}


def falls(curve, after):
    """Validations past iteration ``after`` that lie ``FALL`` dB or more below the running best."""
    best, count = -math.inf, 0
    for it, value in curve:
        best = max(best, value)
        count += it > after and best - value >= FALL
    return count


def _value_at(curve, iteration):
    return dict(curve).get(iteration, math.nan)


def _paired(a, b, measure):
    """Paired differences ``measure(a[seed]) - measure(b[seed])`` over the seeds both have."""
    return [measure(a[s]) - measure(b[s]) for s in sorted(set(a) & set(b))]


def _cell(differences, adjusted_p, words, digits=2):
    """Mean ± 95% half-width, the adjusted p and, when it is below ``cv.ALPHA`` (the study's rule), ``words`` (for
    above zero, below zero)."""
    mean, half = cv.interval95(differences)
    if math.isnan(mean):
        return '–'
    p = '' if math.isnan(adjusted_p) else f'p {cv.format_p(adjusted_p)}'
    p += f', **{words[mean < 0]}**' if cv.is_decided(adjusted_p) else ''
    return cv.format_difference(mean, half, digits) + (f' ({p})' if p else '')


def _spread(values, digits=2):
    return cv.format_spread(*cv.mean_sd(values), digits)


def summarise(records, family, candidates, lr, iters):
    """The summary lines of one rate and length: per candidate its own figures (mean ± sd over seeds) and
    its paired differences from the baseline and from the unchanged deconvolved arm (mean ± 95% t half-width, paired
    t-test p adjusted by Holm over the candidates of each column)."""
    curves = {name: _curves(records, name, lr, iters) for name in candidates}
    curves = {name: c for name, c in curves.items() if c}
    base = curves.get(BASELINE, {})
    iterations = sorted({it for c in curves.values() for curve in c.values() for it, _ in curve})
    step = iterations[1] - iterations[0] if len(iterations) > 1 else 1
    early = next((it for it in iterations if it >= EARLY * iters), iterations[0] if iterations else 0)
    target = cv.mean_sd([cv.final(curve) for curve in base.values()])[0] - THRESHOLD

    def reach(curve):
        it = cv.first_reaching(curve, target)
        return iters + step if it is None else it  # never: one validation past the run, a lower bound

    columns = {  # name -> (reference, measure, words for a decided difference above and below zero)
        'early': (BASELINE, lambda curve: _value_at(curve, early), ('higher', 'lower')),
        'final': (BASELINE, cv.final, ('higher', 'lower')),
        'reach': (BASELINE, reach, ('slower', 'faster')),
        'drop': (UNCHANGED, cv.worst_drop, ('falls further', 'falls less')),
        'final_unchanged': (UNCHANGED, cv.final, ('higher', 'lower')),
    }
    others = [name for name in curves if name != BASELINE]
    differences = {column: {name: _paired(curves[name], curves.get(reference, {}), measure)
                            for name in others if name != reference}
                   for column, (reference, measure, _) in columns.items()}
    adjusted = {column: dict(zip(diffs, cv.holm([cv.paired_p(d) for d in diffs.values()])))
                for column, diffs in differences.items()}

    def cell(column, name):
        if name not in differences[column]:
            return ''
        return _cell(differences[column][name], adjusted[column][name], columns[column][2],
                     0 if column == 'reach' else 2)

    base_label, deconv_label = label(family, BASELINE), label(family, UNCHANGED)
    lines = [f'## Adam {lr:g}, {iters} iterations', '',
             f'![validation curves](' + _plot_name(lr, iters) + ')', '',
             f'Own figures, mean ± sd over seeds: validation PSNR at iteration {early} (early) and at the end, the '
             f'largest fall below the running best, and validations past iteration {early} lying {FALL:g} dB or '
             f'more below it. Differences, paired by seed, mean ± 95% t half-width (Holm-adjusted p over the '
             f'candidates): from {base_label} in PSNR at iteration {early} and at the end, and in iterations to '
             f'reach {base_label}\'s final mean minus {THRESHOLD:g} dB ({target:.2f} dB; a seed that never does '
             f'counts {iters + step}); from the unchanged {deconv_label} in the largest fall and the final PSNR. '
             f'A difference whose adjusted p is below {cv.ALPHA:g} is decided, as in the study, and says which way in '
             'bold.',
             '',
             f'| candidate | what it changes | seeds | early | final | largest fall | falls | '
             f'early − {base_label} | final − {base_label} | iterations − {base_label} | fall − {deconv_label} | '
             f'final − {deconv_label} |',
             '|---|---|---|---|---|---|---|---|---|---|---|---|']
    for name, seeds in curves.items():
        own = list(seeds.values())
        lines.append(f'| {label(family, name)} | {CANDIDATES[name][0]} | {len(own)} | '
                     f'{_spread([_value_at(c, early) for c in own])} | {_spread([cv.final(c) for c in own])} | '
                     f'{_spread([cv.worst_drop(c) for c in own])} | {_spread([falls(c, early) for c in own], 1)} | '
                     + ' | '.join(cell(column, name) for column in columns) + ' |')
    ranked = [label(family, name) for name in
              sorted(others, key=lambda name: -cv.mean_sd([cv.final(c) for c in curves[name].values()])[0])]
    sds = [cv.mean_sd(d)[1] for d in differences['final'].values() if len(d) > 1]
    n = min((len(d) for d in differences['final'].values()), default=0)
    power = ''
    if sds and n > 1:
        sd = max(sds)
        power = (f' With {n} seeds and a spread of the final differences from {base_label} up to {sd:.2f} dB, a '
                 f'paired t-test at {cv.ALPHA:g} detects a true difference of {cv.detectable_effect(sd, n):.2f} dB '
                 'with probability 0.8 (before Holm\'s correction): smaller effects can go unseen.')
    lines += ['', 'Ranked by final validation PSNR (mean over seeds): ' + ', '.join(ranked) + '.' + power, '']
    return lines


def best_rate_lines(records, family, candidates):
    """For each length with several rates: every candidate at its own best rate (by mean final validation PSNR
    among this record's rates) against the baseline at its own, paired by seed, Holm over the candidates."""
    lines = []
    for iters in sorted({n for _, _, n, _ in records}):
        rates = sorted({lr for _, lr, n, _ in records if n == iters})
        if len(rates) < 2:
            continue
        finals = {name: {lr: {seed: cv.final(curve) for seed, curve in _curves(records, name, lr, iters).items()}
                         for lr in rates} for name in candidates}
        best = {name: cv.best_rate({lr: by_seed.values() for lr, by_seed in by_lr.items()})
                for name, by_lr in finals.items()}
        best = {name: lr for name, lr in best.items() if lr is not None}
        if BASELINE not in best:
            continue
        base = finals[BASELINE][best[BASELINE]]
        others = [name for name in best if name != BASELINE]
        differences = {name: [finals[name][best[name]][s] - base[s]
                              for s in sorted(set(finals[name][best[name]]) & set(base))] for name in others}
        adjusted = dict(zip(others, cv.holm([cv.paired_p(d) for d in differences.values()])))
        base_label = label(family, BASELINE)
        lines += [f'## Each at its own best rate, {iters} iterations', '',
                  f'The rate with the highest mean final validation PSNR among this record\'s rates '
                  f'({", ".join(f"{lr:g}" for lr in rates)}; chosen after seeing them); {base_label}\'s is '
                  f'{best[BASELINE]:g}. Final PSNR differences from {base_label} at its best rate, paired by seed, '
                  'mean ± 95% t half-width (Holm-adjusted p over the candidates).', '',
                  f'| candidate | its best rate | seeds | final − {base_label} at {best[BASELINE]:g} |',
                  '|---|---|---|---|']
        lines += [f'| {label(family, name)} | {best[name]:g} | {len(differences[name])} | '
                  f'{_cell(differences[name], adjusted[name], ("higher", "lower"))} |' for name in others]
        lines.append('')
    return lines


def _plot(records, family, candidates, lr, iters, path):
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot as plt

    shown = [name for name in candidates if name != BASELINE and _curves(records, name, lr, iters)]
    if not shown:
        return
    cols = min(4, len(shown))
    rows = math.ceil(len(shown) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), sharex=True, sharey=True,
                             squeeze=False)
    references = [(BASELINE, 'tab:blue'), (UNCHANGED, 'tab:grey')]
    for ax, name in zip(axes.flat, shown):
        for line, color in references + ([(name, 'tab:red')] if name != UNCHANGED else []):
            by_seed = _curves(records, line, lr, iters)
            if not by_seed:
                continue
            mean, sd = cv.mean_curve(list(by_seed.values()))
            its = [it for it, _ in mean]
            ax.plot(its, [m for _, m in mean], color=color, linewidth=1.2,
                    label=f'{label(family, line)} ({len(by_seed)} seeds)')
            ax.fill_between(its, [m - (0 if math.isnan(s) else s) for (_, m), (_, s) in zip(mean, sd)],
                            [m + (0 if math.isnan(s) else s) for (_, m), (_, s) in zip(mean, sd)], color=color,
                            alpha=0.15, linewidth=0)
        ax.set_title(textwrap.fill(f'{label(family, name)}: {CANDIDATES[name][0]}', 60), fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in axes.flat[len(shown):]:
        ax.axis('off')
    for ax in axes[-1]:
        ax.set_xlabel('iteration')
    for ax in axes[:, 0]:
        ax.set_ylabel('validation PSNR (dB)')
    fig.suptitle(f'Screened candidates at Adam {lr:g}: mean ± sd over seeds', fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
