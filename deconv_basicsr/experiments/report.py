"""The study's record: ``curves.csv``, ``tests.csv``, plots, and ``summary.md`` (verdicts with intervals).

Every figure of ``summary.md`` is computed from ``curves.csv``, ``tests.csv`` and ``timing.json`` in the record
folder. Differences are deconvolved − baseline, paired by seed (the two arms of a seed share initial weights
and batches); intervals are 95% Student t over seeds; p-values are those of the paired t-test, adjusted by
Holm's method over the conditions of a claim.
"""
import csv
import json
import math
import os
from os import path as osp

from deconv_basicsr.experiments import curves as cv
from deconv_basicsr.experiments.curves import format_difference, format_p, format_spread
from deconv_basicsr.experiments.design import ARM_LABELS, PAIRS
from deconv_basicsr.experiments.runner import is_diverged

# The seed paper's Table 1 at x2 (Y-PSNR; EDSR-baseline and Deconv-EDSR, DIV2K, 300k iterations).
PAPER_X2 = {'Set5': (38.034, 37.994), 'Set14': (33.598, 33.556), 'B100': (32.213, 32.174)}
# The paper's claims per family: (sign of deconv - baseline in final PSNR, sign of deconv - baseline in
# iterations to a threshold, wording). (a): not faster (no fewer iterations) and lower; (b): faster and higher.
CLAIMS = {
    'edsr': (-1, +1, '(a) EDSR: deconvolution in the residual blocks does not converge faster and ends slightly lower'),
    'srcnn': (+1, -1, '(b) SRCNN: deconvolution converges faster and ends higher'),
}
THRESHOLDS = (0.5, 0.1)  # dB below the baseline's final mean
TEST_FIELDS = ('run', 'family', 'arm', 'lr', 'iters', 'seed', 'dataset', 'psnr', 'ssim')
# One colour and line style per line of a plot.
STYLES = {'srcnn': ('tab:blue', '-'), 'dsrcnn_c2': ('tab:red', '-'), 'edsr': ('tab:blue', '-'),
          'dedsr': ('tab:red', '-'), 'running': ('tab:orange', '--')}


def verdict(adjusted_p, mean, paper_sign):
    """'reproduced' / 'contradicted' when the Holm-adjusted p is below ``cv.ALPHA`` and the mean lies on the paper's
    side of zero / the other side; 'inconclusive' otherwise."""
    if not cv.is_decided(adjusted_p):
        return 'inconclusive'
    return 'reproduced' if mean * paper_sign > 0 else 'contradicted'


class Condition:
    """The records of one condition, arranged for comparison: ``curves[arm][seed]`` (recalibrated PSNR),
    ``running[seed]`` (the deconvolved arm on its moving averages) and ``losses[arm][seed]``."""

    def __init__(self, condition, records):
        self.condition = condition
        self.baseline, self.deconv = PAIRS[condition.family]
        self.curves, self.running, self.losses = {self.baseline: {}, self.deconv: {}}, {}, {}
        for run, rows in records.items():
            if run.condition != condition.key:
                continue
            self.curves[run.arm][run.seed] = [(it, psnr) for it, psnr, _, _ in rows]
            self.losses.setdefault(run.arm, {})[run.seed] = [(it, loss) for it, _, _, loss in rows]
            if not run.is_baseline:
                self.running[run.seed] = [(it, value) for it, _, value, _ in rows if not math.isnan(value)]
        self.seeds = sorted(set(self.curves[self.baseline]) & set(self.curves[self.deconv]))

    def finals(self, arm):
        """The final PSNR of ``arm`` at each paired seed (a seed whose other arm has not finished is left out,
        so that the finals and their difference describe the same seeds)."""
        return {seed: cv.final(self.curves[arm][seed]) for seed in self.seeds}

    def target(self, delta):
        """The baseline's final mean over the paired seeds, minus ``delta``."""
        return cv.mean_sd([cv.final(self.curves[self.baseline][s]) for s in self.seeds])[0] - delta

    def reach(self, arm, delta):
        """Iterations each seed of ``arm`` needs to reach ``target(delta)``: ``{seed: (iterations, reached)}``;
        a seed that never does counts one validation past its run, a lower bound."""
        target, beyond = self.target(delta), self.condition.iters + self.val_step()
        result = {}
        for seed in self.seeds:
            it = cv.first_reaching(self.curves[arm][seed], target)
            result[seed] = (beyond, False) if it is None else (it, True)
        return result

    def val_step(self):
        curve = next(iter(self.curves[self.baseline].values()), [(0, 0), (1, 0)])
        return curve[1][0] - curve[0][0] if len(curve) > 1 else 1

    def differences_at(self, iteration):
        return [dict(self.curves[self.deconv][s]).get(iteration, math.nan)
                - dict(self.curves[self.baseline][s]).get(iteration, math.nan) for s in self.seeds]

    def iterations(self):
        shared = [set(dict(self.curves[arm][s])) for arm in (self.baseline, self.deconv) for s in self.seeds]
        return sorted(set.intersection(*shared)) if shared else []


def _comparison(differences):
    """Mean, 95% half-width, sd, p-value of paired ``differences``."""
    mean, half = cv.interval95(differences)
    return {'mean': mean, 'half': half, 'sd': cv.mean_sd(differences)[1], 'p': cv.paired_p(differences),
            'n': len(differences)}


def compare(conditions, records, spi):
    """Every comparison of every condition: ``{(family, key): {name: comparison}}`` with Holm-adjusted p-values
    over the conditions of a family, per comparison name."""
    results = {}
    for condition in conditions:
        c = Condition(condition, records)
        if not c.seeds:
            continue
        finals = {arm: c.finals(arm) for arm in (c.baseline, c.deconv)}
        row = {'final': _comparison([finals[c.deconv][s] - finals[c.baseline][s] for s in c.seeds])}
        running = [cv.final(c.running[s]) - finals[c.baseline][s] for s in c.seeds if c.running.get(s)]
        row['final_running'] = _comparison(running)
        for delta in THRESHOLDS:
            reach = {arm: c.reach(arm, delta) for arm in (c.baseline, c.deconv)}
            its = [reach[c.deconv][s][0] - reach[c.baseline][s][0] for s in c.seeds]
            row[f'iters_{delta}'] = {**_comparison(its), 'censored': sum(
                not reach[arm][s][1] for arm in reach for s in c.seeds)}
            if spi and all(arm in spi for arm in reach):
                seconds = [reach[c.deconv][s][0] * spi[c.deconv] - reach[c.baseline][s][0] * spi[c.baseline]
                           for s in c.seeds]
                row[f'seconds_{delta}'] = _comparison(seconds)
        results[condition] = (c, row)
    for family in {condition.family for condition in results}:
        members = [condition for condition in results if condition.family == family]
        for name in {name for condition in members for name in results[condition][1]}:
            adjusted = cv.holm([results[m][1].get(name, {'p': math.nan})['p'] for m in members])
            for member, p in zip(members, adjusted):
                if name in results[member][1]:
                    results[member][1][name]['holm'] = p
    return results


def best_rate(results, family, iters, arm):
    """The learning rate at which ``arm`` ends highest on average (validation), among the conditions of
    ``family`` at length ``iters``."""
    return cv.best_rate({condition.lr: c.finals(arm).values() for condition, (c, _) in results.items()
                         if (condition.family, condition.iters) == (family, iters)})


def write_record(out, record, name, preset, records, val_set):
    """Write the record into ``record`` from ``records`` (``{run: rows}``) and the test results under ``out``.
    Returns ``summary.md``."""
    os.makedirs(record, exist_ok=True)
    cv.write_csv(osp.join(record, 'curves.csv'), records)
    # Every figure from the values as written (runs read from logs have more digits): a reader recomputing
    # from curves.csv gets the same figures, even where a value lies on a threshold.
    records = cv.read_csv(osp.join(record, 'curves.csv'))
    timing = _read_json(osp.join(record, 'timing.json'))
    spi = timing['seconds_per_iter'] if timing else {}
    results = compare(preset.conditions, records, spi)
    tests = _collect_tests(out, record, records)

    planned = preset.runs()
    diverged = [run for run in planned if is_diverged(out, run.name)]
    complete = all(run in records or run in diverged for run in planned)
    lines = [f'# Study, preset `{name}`', '', preset.description + '.', '',
             f'x{preset.scale}; batch {preset.batch_size}; Adam (betas 0.9, 0.99), L1; learning rate halved at '
             f"{', '.join(f'{f:.0%}' for f in preset.milestones) or 'no point'} of the iterations; validation PSNR "
             f'(Y channel, border {preset.scale}) on `{val_set}` ({preset.val_images} images, {preset.val_crop}×'
             f'{preset.val_crop} HR centre crops) every {preset.val_freq} iterations, after recalibrating the '
             f'deconvolved arm on its last {preset.recalibrate_batches} training batches (and before, on its moving '
             'averages: "running"). Both arms of a seed share initial weights, batches and schedule; seeds differ '
             'in all of these. Differences: deconvolved − baseline, paired by seed, mean ± 95% t half-width; p: '
             'paired t-test; Holm: p adjusted over the conditions of the claim.'
             + (f' Verdict: reproduced / contradicted when the Holm-adjusted p < {cv.ALPHA:g} (by the sign), else '
                'inconclusive.'
                if preset.verdicts else ''), '',
             f'Runs in this record: {sum(run in records for run in planned)} of {len(planned)}'
             + ('.' if complete else ' (**partial**: rerun the command to complete it).'), '']
    if diverged:
        lines += [f'Diverged (stopped by the non-finite guard, so not in the curves; `diverged.txt` in each run\'s '
                  f"folder): {', '.join(run.name for run in diverged)}.", '']
    lines += _verdict_table(preset, results)
    for family, (final_sign, iters_sign, claim) in CLAIMS.items():
        members = [(condition, results[condition]) for condition in preset.conditions
                   if condition.family == family and condition in results]
        if members:
            lines += _claim_section(claim, members, final_sign, iters_sign, spi, record, val_set)
    lines += _best_rate_section(preset, results)
    lines += _test_section(preset, tests, records)
    lines += _machines_section(out, record, records)
    lines += ['Every value above is computed from `curves.csv`, `tests.csv`, `timing.json` and `machines.csv` in this '
              'folder.', '']
    text = '\n'.join(lines)
    with open(osp.join(record, 'summary.md'), 'w') as f:
        f.write(text)
    return text


def _read_json(path):
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def _verdict_table(preset, results):
    judged = preset.verdicts
    lines = ['## Verdicts: claim × learning rate × length' if judged else '## Differences: claim × learning rate × length',
             '']
    if not judged:
        lines += ['This preset checks the code path with tiny networks and a few iterations; it states no verdict.', '']
    lines += ['| claim | half | condition | seeds | difference | Holm p |' + (' verdict |' if judged else ''),
              '|---|---|---|---|---|---|' + ('---|' if judged else '')]
    for family, (final_sign, iters_sign, _) in CLAIMS.items():
        for condition in preset.conditions:
            if condition.family != family or condition not in results:
                continue
            row = results[condition][1]
            halves = [('ends ' + ('lower' if final_sign < 0 else 'higher'), 'final', final_sign, ' dB'),
                      ('not faster' if iters_sign > 0 else 'faster', 'iters_0.5', iters_sign,
                       ' it to baseline final − 0.5 dB')]
            for half, key, sign, unit in halves:
                r = row[key]
                lines.append(f"| {'(a)' if family == 'edsr' else '(b)'} | {half} | {condition.label} | {r['n']} | "
                             f"{format_difference(r['mean'], r['half'], 0 if key != 'final' else 2)}{unit} | "
                             f"{format_p(r['holm'])} |"
                             + (f" {verdict(r['holm'], r['mean'], sign)} |" if judged else ''))
    return lines + ['']


def _claim_section(claim, members, final_sign, iters_sign, spi, record, val_set):
    lines = [f'## {claim}', '',
             '| condition | seeds | baseline final | deconv final | difference (p, Holm) | smallest effect '
             'detected with 80% power | deconv on moving averages − baseline | baseline gain over last 20% |',
             '|---|---|---|---|---|---|---|---|']
    for condition, (c, row) in members:
        base = cv.mean_sd(c.finals(c.baseline).values())
        deconv = cv.mean_sd(c.finals(c.deconv).values())
        r, running = row['final'], row['final_running']
        gains = [cv.late_gain(c.curves[c.baseline][s]) for s in c.seeds]
        lines.append(f"| {condition.label} | {r['n']} | {format_spread(*base)} | {format_spread(*deconv)} | "
                     f"{format_difference(r['mean'], r['half'])} ({format_p(r['p'])}, {format_p(r['holm'])}) | "
                     f"{format_spread(cv.detectable_effect(r['sd'], r['n']))} dB | "
                     f"{format_difference(running['mean'], running['half'])} | "
                     f"{format_difference(cv.mean_sd(gains)[0], math.nan, 3)} |")
    lines += ['', 'A baseline has flattened when its gain over the last 20% of iterations is under 0.05 dB. The '
             f'smallest effect detected with 80% power is that of a two-sided paired t-test at {cv.ALPHA:g} with these '
              'seeds and the observed spread of the differences.', '',
              'Iterations (and seconds of training steps, from `timing.json`) to reach the baseline\'s final mean '
              'minus 0.5 / 0.1 dB, deconvolved − baseline, paired by seed. A seed that never reaches it counts one '
              'validation past the run (a lower bound); "censored" counts those seeds over both arms.', '',
              '| condition | − 0.5 dB: iterations (Holm p) | seconds | censored | − 0.1 dB: iterations (Holm p) | '
              'seconds | censored |', '|---|---|---|---|---|---|---|']
    for condition, (c, row) in members:
        cells = []
        for delta in THRESHOLDS:
            r, s = row[f'iters_{delta}'], row.get(f'seconds_{delta}')
            cells += [f"{format_difference(r['mean'], r['half'], 0)} ({format_p(r['holm'])})",
                      format_difference(s['mean'], s['half'], 0) if s else '–', str(r['censored'])]
        lines.append(f'| {condition.label} | ' + ' | '.join(cells) + ' |')
    lines += ['', 'During training (validation PSNR difference at each validation, paired by seed):', '',
              '| condition | deconv ahead (mean) at | interval above zero at | interval below zero at | '
              'largest lead (iteration) | plot |', '|---|---|---|---|---|---|']
    for condition, (c, _) in members:
        points = [(it, *cv.interval95(c.differences_at(it))) for it in c.iterations()]
        above = [it for it, m, h in points if m - h > 0]
        below = [it for it, m, h in points if m + h < 0]
        ahead = sum(m > 0 for _, m, _ in points)
        lead = max(points, key=lambda p: p[1]) if points else (0, math.nan, math.nan)
        plot = _plot_condition(c, record, val_set)
        lines.append(f'| {condition.label} | {ahead} of {len(points)} | {_iterations(above)} | {_iterations(below)} | '
                     f'{format_difference(lead[1], lead[2])} ({lead[0]}) | `{plot}` |')
    return lines + ['']


def _iterations(its):
    if not its:
        return 'none'
    return f"{len(its)}: {', '.join(map(str, its[:6]))}{', ...' if len(its) > 6 else ''}"


def _plot_condition(c, record, val_set):
    """Two panels: each arm's mean ± sd over seeds, and the paired difference with its 95% band."""
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot as plt

    condition = c.condition
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2))
    lines = [(ARM_LABELS[c.baseline], c.curves[c.baseline], STYLES[c.baseline]),
             (ARM_LABELS[c.deconv], c.curves[c.deconv], STYLES[c.deconv]),
             (f'{ARM_LABELS[c.deconv]}, moving averages', c.running, STYLES['running'])]
    for label, curves, (color, style) in lines:
        curves = {s: curve for s, curve in curves.items() if curve and s in c.seeds}
        mean, sd = cv.mean_curve(list(curves.values()))
        if not mean:
            continue
        xs, ys = [it for it, _ in mean], [m for _, m in mean]
        left.plot(xs, ys, color=color, linestyle=style, label=f'{label} (n={len(curves)})')
        if len(curves) > 1:
            sds = [s for _, s in sd]
            left.fill_between(xs, [y - s for y, s in zip(ys, sds)], [y + s for y, s in zip(ys, sds)], color=color,
                              alpha=0.15)
    left.set_title(f'{condition.label}: mean ± sd over seeds', fontsize=10)
    left.set_ylabel(f'PSNR on {val_set} (dB, Y)')
    points = [(it, *cv.interval95(c.differences_at(it))) for it in c.iterations()]
    if points:
        xs = [it for it, _, _ in points]
        means = [m for _, m, _ in points]
        halves = [0 if math.isnan(h) else h for _, _, h in points]
        right.plot(xs, means, color='tab:red', label=f'{ARM_LABELS[c.deconv]} − {ARM_LABELS[c.baseline]} '
                   f'(n={len(c.seeds)} pairs)')
        right.fill_between(xs, [m - h for m, h in zip(means, halves)], [m + h for m, h in zip(means, halves)],
                           color='tab:red', alpha=0.2, label='95% interval')
    right.axhline(0, color='black', linewidth=0.8)
    right.set_title('paired difference, mean ± 95% interval', fontsize=10)
    right.set_ylabel('PSNR difference (dB)')
    for ax in (left, right):
        ax.set_xlabel('iteration')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    name = f'{condition.family}_lr{condition.lr:g}_it{condition.iters}.png'
    fig.tight_layout()
    fig.savefig(osp.join(record, name), dpi=110)
    plt.close(fig)
    return name


def _best_rate_section(preset, results):
    """Each arm at its own best rate (by mean final validation PSNR), paired by seed across rates."""
    lines = []
    for family, iters in dict.fromkeys((c.family, c.iters) for c in preset.conditions):
        baseline, deconv = PAIRS[family]
        rates = [condition.lr for condition in results if (condition.family, condition.iters) == (family, iters)]
        if len(rates) < 2:
            continue
        lr_base, lr_deconv = (best_rate(results, family, iters, arm) for arm in (baseline, deconv))
        by_lr = {condition.lr: c for condition, (c, _) in results.items()
                 if (condition.family, condition.iters) == (family, iters)}
        base, dec = by_lr[lr_base].finals(baseline), by_lr[lr_deconv].finals(deconv)
        seeds = sorted(set(base) & set(dec))
        r = _comparison([dec[s] - base[s] for s in seeds])
        lines += [f'{family.upper()}, {iters} it, each arm at its own best rate on validation: {ARM_LABELS[deconv]} '
                  f'at {lr_deconv:g} − {ARM_LABELS[baseline]} at {lr_base:g}: '
                  f'{format_difference(r["mean"], r["half"])} dB '
                  f'(n={r["n"]}, p {format_p(r["p"])}; one comparison, chosen after seeing the rates).', '']
    return (['## Each arm at its own best learning rate', ''] + lines) if lines else []


def _collect_tests(out, record, records):
    """Rows of ``tests.csv``: the BasicSR test logs of the runs under ``out``, else the committed rows of runs
    the record holds."""
    from deconv_basicsr.experiments.tables import read_test_logs

    path = osp.join(record, 'tests.csv')
    committed = {}
    if osp.isfile(path):
        with open(path, newline='') as f:
            for row in csv.DictReader(f):
                committed.setdefault(row['run'], []).append(row)
    rows = []
    bicubic = read_test_logs(osp.join(out, 'results', 'test_bicubic'))
    rows += [{'run': 'bicubic', 'family': '', 'arm': 'bicubic', 'lr': '', 'iters': '', 'seed': '', 'dataset': d,
              'psnr': f"{m.get('psnr', math.nan):.4f}", 'ssim': f"{m.get('ssim', math.nan):.4f}"}
             for d, m in sorted(bicubic.items())] or committed.get('bicubic', [])
    for run in sorted(records, key=lambda r: r.name):
        logs = read_test_logs(osp.join(out, 'results', f'test_{run.name}'))
        if logs:
            # Every field a string, as in the committed rows read beside these.
            rows += [{'run': run.name, 'family': run.family, 'arm': run.arm, 'lr': f'{run.lr:g}',
                      'iters': str(run.iters), 'seed': str(run.seed), 'dataset': d,
                      'psnr': f"{m.get('psnr', math.nan):.4f}", 'ssim': f"{m.get('ssim', math.nan):.4f}"}
                     for d, m in sorted(logs.items())]
        else:
            rows += committed.get(run.name, [])
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, TEST_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return rows


def _test_section(preset, tests, records):
    if not tests:
        return []
    tested = {row['run'] for row in tests}
    untested = sorted(run.name for run in records if run.name not in tested)
    psnr = {}
    for row in tests:
        key = (row['family'], row['arm'], row['lr'], str(row['iters']))
        psnr.setdefault(key, {}).setdefault(row['dataset'], {})[row['seed']] = float(row['psnr'])
    bicubic = psnr.get(('', 'bicubic', '', ''), {})
    lines = ['## Final test (PSNR, Y channel, border = scale; final checkpoints, one row per seed in `tests.csv`)',
             '', '| condition | set | bicubic | baseline (mean ± sd) | deconvolved (mean ± sd) | paired difference | '
             'seeds |', '|---|---|---|---|---|---|---|']
    for condition in preset.conditions:
        baseline, deconv = PAIRS[condition.family]
        base = psnr.get((condition.family, baseline, f'{condition.lr:g}', str(condition.iters)), {})
        dec = psnr.get((condition.family, deconv, f'{condition.lr:g}', str(condition.iters)), {})
        for dataset in preset.test_sets:
            b, d = base.get(dataset, {}), dec.get(dataset, {})
            seeds = sorted(set(b) & set(d))
            if not seeds:
                continue
            mean, half = cv.interval95([d[s] - b[s] for s in seeds])
            bic = bicubic.get(dataset, {}).get('', math.nan)
            lines.append(f'| {condition.label} | {dataset} | {format_spread(bic)} | '
                         f'{format_spread(*cv.mean_sd(b.values()))} | '
                         f'{format_spread(*cv.mean_sd(d.values()))} | {format_difference(mean, half)} | {len(seeds)} |')
    paper = [f'{name} {base:.3f} / {deconv:.3f} ({deconv - base:+.3f})' for name, (base, deconv) in PAPER_X2.items()
             if name in preset.test_sets]
    if paper:
        lines += ['', 'The paper (Table 1, x2: EDSR-baseline / Deconv-EDSR, full size, DIV2K, 300k iterations): '
                  + '; '.join(paper) + '. For SRCNN it gives validation curves only.']
    if untested:
        lines += ['', f'Runs of the record without a final test ({len(untested)}): {", ".join(untested)}. A run is '
                  'tested in the study folder it trained in, once its seed has ended; one whose checkpoints are no '
                  'longer there is not retrained for a test, since a retrained run can drift from its recorded '
                  'curve (docs/study.md, Reproducibility).']
    return lines + ['']


def _machines_section(out, record, records):
    """Where the runs trained (``machines.csv``: a row per start of a run), as a count of runs per machine."""
    from deconv_basicsr.experiments.runner import MACHINE_FIELDS

    rows, source = [], None
    for path in (osp.join(out, 'machines.csv'), osp.join(record, 'machines.csv')):
        if osp.isfile(path):
            with open(path, newline='') as f:
                rows = list(csv.DictReader(f))
            source = path
            break
    names = {run.name for run in records}
    rows = [row for row in rows if row['run'] in names]
    if not rows:
        return []
    target = osp.join(record, 'machines.csv')
    # Where the record is the study folder, its machines.csv is the runner's own log, which also holds the starts
    # of runs not in the record yet: it is read, never rewritten.
    if not osp.isfile(target) or not osp.samefile(source, target):
        with open(target, 'w', newline='') as f:
            writer = csv.DictWriter(f, MACHINE_FIELDS)
            writer.writeheader()
            writer.writerows(rows)
    machines = {}
    for row in rows:
        machines.setdefault(row['run'], set()).add((row['cpu'], row['capability'], row['torch']))
    counts = {}
    for run_machines in machines.values():
        for machine in run_machines:
            counts[machine] = counts.get(machine, 0) + 1
    mixed = sorted(name for name, run_machines in machines.items() if len(run_machines) > 1)
    lines = ['## Where the runs trained', '', '| CPU | torch CPU capability | torch | runs |', '|---|---|---|---|']
    lines += [f'| {cpu} | {capability} | {torch} | {n} |' for (cpu, capability, torch), n in sorted(counts.items())]
    lines += ['', 'On one CPU capability a run is bit-reproducible; across capabilities the float results differ in '
              'the last bits and a chaotic run drifts (docs/study.md). '
              + (f"Runs resumed on another machine: {', '.join(mixed)}." if mixed else
                 'No run was resumed on another machine.'), '']
    return lines
