"""What goes on inside a deconvolved network when its training becomes unstable, step by step.

``ProbedSRModel`` is ``DeconvSRModel`` that, after every training step, records for each probed layer:

* ``cond``: the condition number of the covariance of the layer's sampled input patches (plus ``eps I``),
  the matrix the layer whitens with;
* ``deconv_norm``: the spectral norm of that batch's whitening matrix ``D`` (its largest eigenvalue);
* ``kernel_norm`` / ``folded_norm``: the Frobenius norm of the layer's kernel ``W`` and of the folded kernel
  ``D·W`` that the convolution actually applies;
* ``grad_norm``: the Frobenius norm of the kernel's gradient, and ``grad_total`` over every parameter;
* ``loss``: the training L1 of the step.

A plain convolution (the baseline's) is measured through a FastDeconv twin with the deconvolved arm's
settings: the whitening it *would* apply, and its own kernel as the folded one. The probe reads the inputs
of the step's own forward and computes from them without gradient, so training is that of ``DeconvSRModel``
bit for bit: a probed run retraces the study's run with the same options on the same machine.

Options (YAML)::

    model_type: ProbedSRModel
    probe:
      layers: [conv2]            # qualified module names
      deconv: {block: 16}        # FastDeconv settings of the twin of a plain convolution
      csv: probe.csv             # rows appended after every step (relative: the experiment folder)

Run it through BasicSR's training loop with ``python -m deconv_basicsr.experiments.mechanism -opt FILE``.
"""
import csv
import math
import os
from os import path as osp

import torch
from basicsr.utils.registry import MODEL_REGISTRY

from deconv_basicsr.layers import FastDeconv, deconv_from_conv
from deconv_basicsr.models.deconv_sr_model import DeconvSRModel

FIELDS = ('iter', 'lr', 'loss', 'grad_total', 'layer', 'cond', 'deconv_norm', 'kernel_norm', 'folded_norm',
          'grad_norm')


@MODEL_REGISTRY.register()
class ProbedSRModel(DeconvSRModel):
    """DeconvSRModel that records the statistics of its probed layers after every training step."""

    def __init__(self, opt):
        super().__init__(opt)
        probe = opt['probe']
        net = self.get_bare_model(self.net_g)
        self.probed = {name: net.get_submodule(name) for name in probe['layers']}
        with torch.random.fork_rng():  # building twins must not move the random streams training uses
            self.twins = {name: layer if isinstance(layer, FastDeconv) else
                          deconv_from_conv(layer, **probe.get('deconv', {}))
                          for name, layer in self.probed.items()}
        self.inputs = {}
        for name, layer in self.probed.items():
            layer.register_forward_pre_hook(self._keep_input(name))
        csv_path = probe['csv']
        self.csv_path = csv_path if osp.isabs(csv_path) else osp.join(opt['path']['experiments_root'], csv_path)

    def _keep_input(self, name):
        def hook(module, args):
            if module.training and torch.is_grad_enabled():  # the training step's forward only
                self.inputs[name] = args[0].detach()
        return hook

    def optimize_parameters(self, current_iter):
        super().optimize_parameters(current_iter)
        with torch.no_grad():
            rows = self._measure(current_iter)
        new = not osp.isfile(self.csv_path)
        os.makedirs(osp.dirname(self.csv_path), exist_ok=True)
        with open(self.csv_path, 'a', newline='') as f:
            writer = csv.DictWriter(f, FIELDS)
            if new:
                writer.writeheader()
            writer.writerows(rows)

    def _measure(self, current_iter):
        params = [p for p in self.net_g.parameters() if p.grad is not None]
        shared = {'iter': current_iter, 'lr': self.get_current_learning_rate()[0],
                  'loss': float(self.log_dict.get('l_pix', math.nan)),
                  'grad_total': float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params])))}
        rows = []
        for name, layer in self.probed.items():
            twin = self.twins[name]
            if twin is not layer:
                twin.weight.copy_(layer.weight)
            x = self.inputs[name].to(twin.running_mean.dtype)
            mean, cov = twin.batch_moments(x)
            deconv = twin.whitening(cov)
            folded, _ = twin.fold(mean, deconv)
            rows.append({**shared, 'layer': name,
                         'cond': condition_number(cov),
                         'deconv_norm': float(torch.linalg.eigvalsh(deconv.double())[..., -1].max()),
                         'kernel_norm': float(layer.weight.norm()),
                         'folded_norm': float((folded if twin is layer else layer.weight).norm()),
                         'grad_norm': float(layer.weight.grad.norm()) if layer.weight.grad is not None else math.nan})
        return rows


def condition_number(cov):
    """The largest over groups of ``cov`` (groups, d, d) of its largest eigenvalue over its smallest, in float64;
    inf where the smallest is not positive: singular at the precision ``cov`` was computed in (the input of
    EDSR's first residual block is a linear map of fewer values than its patches hold)."""
    eigenvalues = torch.linalg.eigvalsh(cov.double())
    smallest, largest = eigenvalues[..., 0], eigenvalues[..., -1]
    return float(torch.where(smallest > 0, largest / smallest, math.inf).max())


# ---- the probe of one of the study's pairs ----------------------------------------------------------------

PLOTTED = (('psnr', 'validation PSNR (dB)'), ('loss', 'training L1'), ('cond', 'condition number of Cov (its input)'),
           ('deconv_norm', '‖D‖₂ of the batch'), ('folded_norm', '‖D·W‖_F (applied kernel)'),
           ('grad_norm', '‖∇W‖_F of its kernel'))


def probe_options(preset, run, datasets, iters, val_freq, layers=('conv2', )):
    """The study's options of ``run``, stopped after ``iters`` iterations (same schedule), validated every
    ``val_freq``, with ``ProbedSRModel``."""
    from deconv_basicsr.experiments.design import ARMS, PAIRS, train_options

    opt = train_options(preset, run, datasets)
    deconv_arm = ARMS[PAIRS[run.family][1]]
    opt.update(name=f'probe_{run.name}_to{iters}', model_type='ProbedSRModel',
               probe={'layers': list(layers), 'deconv': {'block': deconv_arm['block']}, 'csv': 'probe.csv'})
    opt['train']['total_iter'] = iters  # the scheduler keeps the study run's milestones
    opt['val']['val_freq'] = val_freq
    opt['logger'].update(save_checkpoint_freq=iters, print_freq=val_freq)
    return opt


def first_fall(curve, drop=1.0):
    """First iteration where ``curve`` lies ``drop`` dB or more below its running best (None if never)."""
    best = -math.inf
    for it, value in curve:
        best = max(best, value)
        if best - value >= drop:
            return it
    return None


def run_probe(out, data, record, seeds=(0, 1, 2), lr=1e-3, iters=600, val_freq=20, jobs=1, threads=1,
              family='srcnn', layer='conv2'):
    """Probe the study's pair of ``family`` at ``lr``, seeds ``seeds``, for its first ``iters`` iterations,
    measuring ``layer`` (a qualified module name); write ``mechanism.csv`` (every step), ``mechanism_val.csv``,
    ``mechanism.png`` and ``mechanism.md`` into ``record``. Returns the summary (Markdown)."""
    from deconv_basicsr.experiments import curves as cv
    from deconv_basicsr.experiments.design import PAIRS, PRESETS, Run
    from deconv_basicsr.experiments.runner import train_all
    from deconv_basicsr.experiments.study import prepare_data

    preset = PRESETS['cpu']
    out = osp.abspath(out)
    datasets = prepare_data(preset, out, data)
    length = min((c.iters for c in preset.conditions if (c.family, c.lr) == (family, lr)), default=iters)
    runs = [Run(family, arm, lr, length, seed) for seed in seeds for arm in PAIRS[family]]
    options = {run: probe_options(preset, run, datasets, iters, val_freq, (layer, )) for run in runs}
    train_all(out, list(options.values()), jobs, threads, desc='probe', entry='deconv_basicsr.experiments.mechanism')

    steps, vals = [], []
    for run, opt in options.items():
        with open(osp.join(out, 'experiments', opt['name'], 'probe.csv'), newline='') as f:
            rows = list(csv.DictReader(f))
        last = {}  # a resumed run appends the steps it repeats: keep the last of each
        for row in rows:
            last[int(row['iter']), row['layer']] = row
        steps += [{'arm': run.arm, 'seed': run.seed, **row} for _, row in sorted(last.items())]
        vals += [{'arm': run.arm, 'seed': run.seed, 'iter': it, 'psnr': psnr}
                 for it, psnr, *_ in cv.read_run(out, opt['name'], iters, datasets['val']['name'])]
    os.makedirs(record, exist_ok=True)
    _write_rows(osp.join(record, 'mechanism.csv'), steps, ('arm', 'seed', *FIELDS))
    _write_rows(osp.join(record, 'mechanism_val.csv'), vals, ('arm', 'seed', 'iter', 'psnr'))
    _plot(steps, vals, seeds, PAIRS[family], osp.join(record, 'mechanism.png'), lr, layer)
    text = _summary(steps, vals, seeds, PAIRS[family], lr, val_freq)
    with open(osp.join(record, 'mechanism.md'), 'w') as f:
        f.write(text)
    return text


def _write_rows(path, rows, fields):
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fields, extrasaction='ignore')
        writer.writeheader()
        writer.writerows(rows)


def _series(steps, vals, arm, seed, key):
    if key == 'psnr':
        return [(int(r['iter']), float(r['psnr'])) for r in vals if r['arm'] == arm and r['seed'] == seed]
    return [(int(r['iter']), float(r[key])) for r in steps if r['arm'] == arm and r['seed'] == seed]


def _plot(steps, vals, seeds, arms, path, lr, layer):
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot as plt

    from deconv_basicsr.experiments.design import ARM_LABELS

    colors = dict(zip(arms, ('tab:blue', 'tab:red')))
    styles = dict(zip(seeds, ('-', '--', ':', '-.')))
    fig, axes = plt.subplots(2, 3, figsize=(15, 7.5), sharex=True)
    for ax, (key, label) in zip(axes.flat, PLOTTED):
        for arm in arms:
            for seed in seeds:
                series = _series(steps, vals, arm, seed, key)
                if series:
                    ax.plot(*zip(*series), color=colors[arm], linestyle=styles[seed], linewidth=1,
                            label=f'{ARM_LABELS[arm]}, seed {seed}')
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3)
        if key in ('cond', 'deconv_norm', 'grad_norm', 'loss'):
            ax.set_yscale('log')
    for ax in axes[-1]:
        ax.set_xlabel('iteration')
    axes.flat[0].legend(fontsize=7)
    baseline, deconv = (ARM_LABELS[arm] for arm in arms)
    fig.suptitle(f'{baseline} and {deconv} at Adam {lr:g}: {layer} step by step '
                 f'(for {baseline}, the whitening its input would get)', fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _summary(steps, vals, seeds, arms, lr, val_freq, window=20):
    """Per seed: where the deconvolved arm first falls 1 dB below its best validation, and the probed
    quantities (median over ``window`` steps) before and after that point, beside the baseline's."""
    import statistics

    from deconv_basicsr.experiments.design import ARM_LABELS

    baseline, deconv = arms
    keys = [key for key, _ in PLOTTED[1:]]
    lines = [f'# What happens at the first fall: {ARM_LABELS[baseline]} against {ARM_LABELS[deconv]}, '
             f'Adam {lr:g}', '',
             f'Validation every {val_freq} iterations; the first fall is the first validation 1 dB or more below '
             f'the running best. Figures: medians over the {window} steps before the validation of the fall and the '
             f'{window} steps after, for each arm (same seed, same batches).', '',
             '| seed | fall at | arm | window | ' + ' | '.join(keys) + ' |', '|---|---|---|---|' + '---|' * len(keys)]
    for seed in seeds:
        fall = first_fall(_series(steps, vals, deconv, seed, 'psnr'))
        if fall is None:
            lines.append(f'| {seed} | none | | | ' + ' | ' * len(keys))
            continue
        for arm in arms:
            for name, low, high in (('before', fall - window - val_freq, fall - val_freq),
                                    ('after', fall - val_freq, fall + window - val_freq)):
                cells = []
                for key in keys:
                    values = [v for it, v in _series(steps, vals, arm, seed, key) if low < it <= high]
                    cells.append(f'{statistics.median(values):.4g}' if values else '–')
                lines.append(f'| {seed} | {fall} | {ARM_LABELS[arm]} | {name} | ' + ' | '.join(cells) + ' |')
    lines += [''] + _steadiness(steps, vals, seeds, arms) + [''] + gradient_totals(steps, seeds, arms)
    return '\n'.join(lines) + '\n'


def gradient_totals(steps, seeds, arms):
    """Per arm and seed, over every step: the total gradient norm's median, 90th percentile and largest value
    (what a clip of the total norm would act on)."""
    import statistics

    from deconv_basicsr.experiments.design import ARM_LABELS

    lines = ['## Total gradient norm, every step', '', 'Over all parameters, before the optimizer step.', '',
             '| arm | seed | steps | median | 90th percentile | largest |', '|---|---|---|---|---|---|']
    for arm in arms:
        for seed in seeds:
            values = [v for _, v in _series(steps, [], arm, seed, 'grad_total')]
            if values:
                p90 = statistics.quantiles(values, n=10, method='inclusive')[-1] if len(values) > 1 else values[0]
                lines.append(f'| {ARM_LABELS[arm]} | {seed} | {len(values)} | {statistics.median(values):.3g} | '
                             f'{p90:.3g} | {max(values):.3g} |')
    return lines


def _steadiness(steps, vals, seeds, arms, after=100):
    """Per arm and seed, over the steps past ``after`` (the first transient left out): medians of the probed
    quantities, the median change from one step to the next of the kernel ``W`` and of the applied kernel
    ``D·W`` (relative to its norm), and how often and how far validation falls below its running best."""
    import statistics

    from deconv_basicsr.experiments.curves import worst_drop
    from deconv_basicsr.experiments.design import ARM_LABELS

    def step_change(series):
        return statistics.median(abs(b - a) / b for (_, a), (_, b) in zip(series, series[1:]))

    lines = [f'## Step by step, iterations {after + 1} on', '',
             'Medians over the steps; "step change" is the median of |‖X‖ at step t − ‖X‖ at step t−1| / ‖X‖ at '
             'step t. Falls: validations 1 dB or more below the running best, and the largest drop.', '',
             '| arm | seed | cond | ‖D‖₂ | ‖W‖_F | ‖D·W‖_F | step change of ‖D‖₂ | step change of ‖W‖ | '
             'step change of ‖D·W‖ | ‖∇W‖_F | loss | falls ≥ 1 dB | largest drop (dB) |', '|---|---|' + '---|' * 11]
    for arm in arms:
        for seed in seeds:
            series = {key: [(it, v) for it, v in _series(steps, vals, arm, seed, key) if it > after]
                      for key in ('cond', 'deconv_norm', 'kernel_norm', 'folded_norm', 'grad_norm', 'loss')}
            medians = {key: statistics.median(v for _, v in s) for key, s in series.items()}
            curve = sorted(_series(steps, vals, arm, seed, 'psnr'))
            falls = sum(max(v for _, v in curve[:i + 1]) - value >= 1 for i, (_, value) in enumerate(curve))
            changes = ' | '.join(f'{step_change(series[key]):.2%}'
                                 for key in ('deconv_norm', 'kernel_norm', 'folded_norm'))
            lines.append(f'| {ARM_LABELS[arm]} | {seed} | {medians["cond"]:.3g} | {medians["deconv_norm"]:.3g} | '
                         f'{medians["kernel_norm"]:.3g} | {medians["folded_norm"]:.3g} | {changes} | '
                         f'{medians["grad_norm"]:.3g} | {medians["loss"]:.3g} | '
                         f'{falls} of {len(curve)} | {worst_drop(curve):.2f} |')
    return lines


def main():
    """BasicSR's training loop with ``ProbedSRModel`` registered (``-opt FILE``, as ``deconv_basicsr.train``)."""
    from deconv_basicsr.train import main as train_main

    train_main()


if __name__ == '__main__':
    main()
