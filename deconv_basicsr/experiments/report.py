"""The study's record: ``curves.csv``, plots, ``summary.md`` (verdicts with intervals) and ``table.csv``."""
import csv
import json
import math
import os
from os import path as osp

from deconv_basicsr.experiments import curves as cv
from deconv_basicsr.experiments.design import ARM_LABELS, FAMILIES
from deconv_basicsr.experiments.study import best_lr, final_psnr, top_variants, tested_runs

# The seed paper's Table 1 at x2 (Y-PSNR; EDSR-baseline and Deconv-EDSR, DIV2K, 300k iterations), for the
# final table's comparison. It gives no SRCNN table.
PAPER_X2 = {'Set5': (38.034, 37.994), 'Set14': (33.598, 33.556), 'B100': (32.213, 32.174)}
# Fractions of the iterations where the early-training differences are read.
EARLY = (0.05, 0.1, 0.25, 0.5)
# The paper's claims: the sign of (deconv - baseline) in final PSNR it reports for each family.
CLAIMS = {
    'edsr': (-1, '(a) EDSR: deconvolution in the residual blocks does not converge faster and ends slightly lower'),
    'srcnn': (+1, '(b) SRCNN: deconvolution converges faster and ends higher'),
}


def _psnr_curve(rows):
    return [(it, psnr) for it, psnr, _ in rows]


def _curves(records, family, arm, lr, diagnosis=''):
    """``{seed: curve}`` of an arm at a learning rate."""
    return {run.seed: _psnr_curve(rows) for run, rows in records.items()
            if (run.family, run.arm, run.lr, run.diagnosis) == (family, arm, lr, diagnosis) and rows}


def _fmt(mean, sd=math.nan, digits=3):
    if math.isnan(mean):
        return '–'
    return f'{mean:.{digits}f}' + (f' ± {sd:.{digits}f}' if not math.isnan(sd) else '')


def _plot_band(ax, curves, label, x_scale=1.0):
    mean, sd = cv.mean_curve(list(curves.values()))
    if not mean:
        return
    xs = [it * x_scale for it, _ in mean]
    ys = [m for _, m in mean]
    line, = ax.plot(xs, ys, marker='.', label=f'{label} (n={len(curves)})')
    if len(curves) > 1:
        sds = [s for _, s in sd]
        ax.fill_between(xs, [y - s for y, s in zip(ys, sds)], [y + s for y, s in zip(ys, sds)],
                        color=line.get_color(), alpha=0.2)


def _arms(records, family):
    baseline, variants = FAMILIES[family]
    present = {run.arm for run in records if run.family == family and not run.diagnosis}
    return [arm for arm in (baseline, *variants) if arm in present]


def _comparison(records, family, arm, lr_arm, baseline, lr_base, iteration=None):
    """Paired (by seed) differences arm - baseline, final or at ``iteration``: their mean and 95% half-width,
    and the seeds."""
    if iteration is None:
        a, b = (final_psnr(records, family, x, lr) for x, lr in ((arm, lr_arm), (baseline, lr_base)))
    else:
        a, b = ({seed: dict(curve).get(iteration, math.nan) for seed, curve in _curves(records, family, x, lr).items()}
                for x, lr in ((arm, lr_arm), (baseline, lr_base)))
    seeds = sorted(set(a) & set(b))
    mean, half = cv.interval95([a[s] - b[s] for s in seeds])
    return mean, half, seeds


def _difference(mean, half):
    return f"{mean:+.3f}{f' ± {half:.3f}' if not math.isnan(half) else ''}"


def write_record(out, record, name, preset, records, val_set, planned):
    """Write the record into ``record`` from ``records`` (``{run: rows}``) and the runs' results under ``out``;
    ``planned`` (``{stage: [run, ...]}``) says what the study will hold when complete. Returns ``summary.md``."""
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot as plt


    os.makedirs(record, exist_ok=True)
    cv.write_csv(osp.join(record, 'curves.csv'), records)
    timing_path = osp.join(record, 'timing.json')
    timing = None
    if osp.isfile(timing_path):
        with open(timing_path) as f:
            timing = json.load(f)
    spi = timing['seconds_per_iter'] if timing else {}
    lines = [f'# Study, preset `{name}`', '', preset.description + '.', '',
             f'x{preset.scale}; batch {preset.batch_size}; Adam (betas 0.9, 0.99), L1; learning rate halved at '
             f"{', '.join(f'{f:.0%}' for f in preset.milestones) or 'no point'} of the iterations; validation PSNR "
             f'(Y channel, border {preset.scale}) on `{val_set}` ({preset.val_images} images, {preset.val_crop}×'
             f'{preset.val_crop} HR centre crops) every {preset.val_freq} iterations. Both arms of a pair share '
             'seed, initial weights, batches and schedule. Intervals: 95% Student t over seeds, paired by seed.', '',
             'Runs in this record: ' + '; '.join(
                 f'{stage} {sum(run in records for run in runs)} of {len(runs)}' for stage, runs in planned.items())
             + ('.' if all(run in records for runs in planned.values() for run in runs) else
                ' (**partial**: rerun the command to complete it).'), '']

    for family, (sign, claim) in CLAIMS.items():
        if family not in preset.families:
            continue
        arms = _arms(records, family)
        if not arms:
            continue
        baseline = FAMILIES[family][0]
        iters = preset.iters[family]
        lines += [f'## {claim}', '',
                  f"{iters} iterations, {preset.gt_size[family]}×{preset.gt_size[family]} HR crops. "
                  f"Learning rates: {', '.join(f'{lr:g}' for lr in preset.lrs[family])}.", '']
        # Screening and final PSNR per learning rate.
        lines += ['Final validation PSNR (mean ± sd over seeds; n seeds) and worst fall below the running best (dB):',
                  '', '| arm | ' + ' | '.join(f'lr {lr:g}' for lr in preset.lrs[family]) + ' |',
                  '|---|' + '---|' * len(preset.lrs[family])]
        for arm in arms:
            cells = []
            for lr in preset.lrs[family]:
                curves = _curves(records, family, arm, lr)
                mean, sd = cv.mean_sd([cv.final(c) for c in curves.values()])
                drop = max((cv.worst_drop(c) for c in curves.values()), default=math.nan)
                cells.append(f'{_fmt(mean, sd)} (n={len(curves)}; fall {drop:.2f})' if curves else '–')
            lines.append(f'| {ARM_LABELS[arm]} | ' + ' | '.join(cells) + ' |')
        if all(run in records for run in planned['screen'] if run.family == family):
            tops = ', '.join(ARM_LABELS[a] for a in top_variants(preset, records, family))
            lines += ['', f'Carried to all seeds (best final PSNR at their own best rate, seed 0): {tops}.', '']
        else:
            lines += ['', 'The screening of this family is not complete: no variant is carried to all seeds yet.', '']
        # Differences: at each shared learning rate, and at each arm's own best.
        base_best = best_lr(preset, records, family, baseline)
        lines += ['Final PSNR difference, variant − baseline, with its 95% interval; verdict on the claim:', '',
                  '| variant | learning rates (variant / baseline) | difference | seeds | verdict |', '|---|---|---|---|---|']
        for arm in arms[1:]:
            own = best_lr(preset, records, family, arm)
            pairs = [(lr, lr, 'shared; best of both' if lr == own == base_best else 'shared')
                     for lr in preset.lrs[family]]
            if own is not None and base_best is not None and own != base_best:
                pairs.append((own, base_best, 'each at its best'))
            for lr_arm, lr_base, which in pairs:
                mean, half, seeds = _comparison(records, family, arm, lr_arm, baseline, lr_base)
                if not seeds:
                    continue
                lines.append(f'| {ARM_LABELS[arm]} | {lr_arm:g} / {lr_base:g} ({which}) | '
                             f'{_difference(mean, half)} | {len(seeds)} | {cv.verdict(mean, half, sign)} |')
        lines += ['', 'A difference is detectable by this run when it exceeds the interval half-width.', '']
        # Early training: is the variant ahead before the end (the "converges faster" half of the claim)?
        early = [round(f * iters / preset.val_freq) * preset.val_freq for f in EARLY]
        lines += [f'Validation PSNR difference, variant − baseline, during training (mean ± 95% interval, paired by '
                  'seed; each arm at its own best rate):', '',
                  '| variant (rate) | ' + ' | '.join(f'it {it}' for it in early) + ' | final |',
                  '|---|' + '---|' * (len(early) + 1)]
        for arm in arms[1:]:
            own = best_lr(preset, records, family, arm)
            if own is None or base_best is None:
                continue
            cells = [_difference(*_comparison(records, family, arm, own, baseline, base_best, it)[:2])
                     for it in (*early, None)]
            lines.append(f'| {ARM_LABELS[arm]} ({own:g} / {base_best:g}) | ' + ' | '.join(cells) + ' |')
        lines.append('')
        # Convergence: iterations and seconds to thresholds, each arm at its own best learning rate.
        if base_best is not None:
            base_mean, _ = cv.mean_curve(list(_curves(records, family, baseline, base_best).values()))
            target = cv.final(base_mean)
            gain = cv.late_gain(base_mean)
            lines += [f'Baseline at its best rate ({base_best:g}): final {target:.3f} dB; gain over the last 20% of '
                      f"iterations {gain:+.3f} dB ({'flat: below 0.05' if abs(gain) < 0.05 else 'still moving'}).", '',
                      '| arm (own best rate) | reaches final − 0.5 dB at | reaches final − 0.1 dB at | s/iter |',
                      '|---|---|---|---|']
            for arm in arms:
                lr = best_lr(preset, records, family, arm)
                mean_curve, _ = cv.mean_curve(list(_curves(records, family, arm, lr).values()))
                cells = []
                for delta in (0.5, 0.1):
                    it = cv.first_reaching(mean_curve, target - delta)
                    seconds = f', {it * spi[arm]:.0f} s' if it is not None and arm in spi else ''
                    cells.append(f'{it} it{seconds}' if it is not None else 'never')
                cost = f'{spi[arm]:.3f}' if arm in spi else '–'
                lines.append(f'| {ARM_LABELS[arm]} ({lr:g}) | {cells[0]} | {cells[1]} | {cost} |')
            lines.append('')
        # Plots: each learning rate, and each arm at its own best rate (by iteration and by seconds).
        for lr in preset.lrs[family]:
            if not any(_curves(records, family, arm, lr) for arm in arms):
                continue
            fig, ax = plt.subplots(figsize=(6.5, 4))
            for arm in arms:
                _plot_band(ax, _curves(records, family, arm, lr), ARM_LABELS[arm])
            _finish(ax, f'{family.upper()}, lr {lr:g}: mean ± sd over seeds', val_set, 'iteration')
            _save(fig, osp.join(record, f'{family}_lr{lr:g}.png'))
        panels = 2 if spi else 1
        fig, axes = plt.subplots(1, panels, figsize=(6.5 * panels, 4), squeeze=False)
        for arm in arms:
            lr = best_lr(preset, records, family, arm)
            _plot_band(axes[0][0], _curves(records, family, arm, lr), f'{ARM_LABELS[arm]}, lr {lr:g}')
            if spi and arm in spi:
                _plot_band(axes[0][1], _curves(records, family, arm, lr), f'{ARM_LABELS[arm]}, lr {lr:g}', spi[arm])
        _finish(axes[0][0], f'{family.upper()}, each arm at its best rate', val_set, 'iteration')
        if spi:
            _finish(axes[0][1], 'the same against training time', val_set,
                    f"seconds (step times measured side by side: {timing['machine']})")
        _save(fig, osp.join(record, f'{family}_best.png'))
        lines += [f'Plots: `{family}_best.png` (each arm at its own best rate), '
                  + ', '.join(f'`{family}_lr{lr:g}.png`' for lr in preset.lrs[family]
                              if any(_curves(records, family, arm, lr) for arm in arms)) + '.', '']

    lines += _diagnosis_section(preset, records, record, val_set, plt)
    lines += _table_section(out, record, preset, records)
    lines += ['Every value above is computed from `curves.csv` (and `table.csv`, `timing.json`) in this folder.', '']
    text = '\n'.join(lines)
    with open(osp.join(record, 'summary.md'), 'w') as f:
        f.write(text)
    return text


def _finish(ax, title, val_set, xlabel):
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f'PSNR on {val_set} (dB, Y)')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt
    plt.close(fig)


def _diagnosis_section(preset, records, record, val_set, plt):
    runs = {run: rows for run, rows in records.items() if run.diagnosis}
    if not runs:
        return []
    lr = preset.diagnosis_lr
    # Every seed of the unchanged arms: how far seeds alone move the figures a change must beat.
    reference = {run: rows for run, rows in records.items()
                 if not run.diagnosis and run.lr == lr and run.arm in ('dsrcnn_c2', 'srcnn')}
    lines = [f'## Diagnosis: DeconvSRCNN conv2 at lr {lr:g}, one change at a time (seed 0)', '',
             'The unchanged arms are listed with every seed run: the spread over seeds is the scale against which '
             'a change on seed 0 can be read.', '',
             '| run | final PSNR | best PSNR | worst fall | mean training L1 over the second half |', '|---|---|---|---|---|']
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for run, rows in sorted({**reference, **runs}.items(),
                            key=lambda item: (item[0].diagnosis, item[0].arm, item[0].seed)):
        curve = _psnr_curve(rows)
        half = [loss for it, _, loss in rows if it > preset.iters[run.family] / 2]
        label = f"{ARM_LABELS[run.arm]}, {run.diagnosis or f'unchanged, seed {run.seed}'}"
        lines.append(f'| {label} | {cv.final(curve):.3f} | {max(p for _, p in curve):.3f} | {cv.worst_drop(curve):.2f} '
                     f'| {cv.mean_sd(half)[0]:.4f} |')
        if run.diagnosis or run.seed == 0:
            ax.plot(*zip(*curve), marker='.', label=label)
    _finish(ax, f'Diagnosis at lr {lr:g} (seed 0)', val_set, 'iteration')
    _save(fig, osp.join(record, 'diagnosis.png'))
    return lines + ['', 'Plot: `diagnosis.png`. SGD runs use momentum 0.9 at the rate named.', '']


def _table_section(out, record, preset, records):
    """The final test table (Table 1's format), ``table.csv``, from the BasicSR test logs."""
    from deconv_basicsr.experiments.tables import read_test_logs

    bicubic = read_test_logs(osp.join(out, 'results', 'test_bicubic'))
    tested = [run for run in tested_runs(preset, records) if osp.isdir(osp.join(out, 'results', f'test_{run.name}'))]
    if not (bicubic and tested):
        return []
    columns = {}
    for run in tested:
        logs = read_test_logs(osp.join(out, 'results', f'test_{run.name}'))
        columns.setdefault((run.family, run.arm, run.lr), {})[run.seed] = logs
    header = ['Dataset', 'Bicubic'] + [f'{ARM_LABELS[arm]} (lr {lr:g})' for _, arm, lr in columns]
    rows = []
    for dataset in preset.test_sets:
        row = [dataset, bicubic.get(dataset, {}).get('psnr', math.nan)]
        for seeds in columns.values():
            row.append(cv.mean_sd([logs.get(dataset, {}).get('psnr', math.nan) for logs in seeds.values()]))
        rows.append(row)
    with open(osp.join(record, 'table.csv'), 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['dataset', 'method', 'lr', 'seeds', 'psnr_mean', 'psnr_sd'])
        for row in rows:
            writer.writerow([row[0], 'Bicubic', '', '', f'{row[1]:.4f}', ''])
            for (family, arm, lr), seeds, (mean, sd) in zip(columns, columns.values(), row[2:]):
                writer.writerow([row[0], ARM_LABELS[arm], f'{lr:g}', len(seeds), f'{mean:.4f}', f'{sd:.4f}'])
    lines = ['## Final test (PSNR, Y channel, border = scale; mean ± sd over seeds; final checkpoints, each arm at '
             'its best learning rate on validation)', '', '| ' + ' | '.join(header) + ' |',
             '|' + '---|' * len(header)]
    for row in rows:
        lines.append(f'| {row[0]} | {row[1]:.3f} | ' + ' | '.join(_fmt(m, s) for m, s in row[2:]) + ' |')
    paper = [f'{name} {base:.3f} / {deconv:.3f} ({deconv - base:+.3f})' for name, (base, deconv) in PAPER_X2.items()
             if name in preset.test_sets]
    lines += ['', 'Values in `table.csv`.' + (
        ' The paper (Table 1, x2: EDSR-baseline / Deconv-EDSR, full size, DIV2K, 300k iterations): '
        + '; '.join(paper) + '. For SRCNN it gives validation curves only (its Figure 6).' if paper else ''), '']
    return lines
