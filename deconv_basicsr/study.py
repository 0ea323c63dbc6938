"""The convergence study: a baseline and its deconvolution twin, trained side by side through BasicSR.

Each pair (EDSR vs DeconvEDSR, SRCNN vs DeconvSRCNN) is trained with the same seed, data, schedule and
validation by ``python -m deconv_basicsr.train`` in a subprocess (one BasicSR experiment per arm, under
``OUT/experiments``). Validation PSNR over iterations is read back from the tensorboard events, time per
iteration from the training logs, and the study writes ``curves.csv``, one PNG per pair and ``summary.md``.
An interrupted study resumes: finished arms are skipped and unfinished ones continue from their last
training state (BasicSR's ``--auto_resume``).
"""
import csv
import glob
import math
import os
import re
import statistics
import subprocess
import sys
from copy import deepcopy
from os import path as osp

import yaml

ARMS = ('baseline', 'deconv')

# Networks of each pair: (baseline, deconv twin). Same sizes, so only the deconvolution differs.
PAIRS = {
    'edsr': ({'type': 'EDSR', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 64, 'num_block': 16, 'res_scale': 1,
              'img_range': 255.0, 'rgb_mean': [0.4488, 0.4371, 0.4040]}, {'type': 'DeconvEDSR'}),
    'srcnn': ({'type': 'SRCNN', 'num_in_ch': 3, 'num_out_ch': 3}, {'type': 'DeconvSRCNN'}),
    # The seed paper does not say which SRCNN layers it deconvolved: only the middle one, in blocks of 16.
    'srcnn_conv2': ({'type': 'SRCNN', 'num_in_ch': 3, 'num_out_ch': 3},
                    {'type': 'DeconvSRCNN', 'deconv_layers': [2], 'block': 16}),
}
# Pairs run when none are named.
DEFAULT_PAIRS = ('edsr', 'srcnn')
# Pairs whose baseline is another pair's (same network and sizes): it is trained once, under that name.
SHARED_BASELINE = {'srcnn_conv2': 'srcnn'}

# Each preset: network overrides per pair, schedule, and data. 'data' is the default dataset when --data
# is not given ('embedded': the dataset built from the photos scikit-image ships).
PRESETS = {
    'smoke': {
        'description': 'both pairs, a few dozen iterations on the embedded dataset: a check that everything runs',
        'networks': {'edsr': {'num_feat': 16, 'num_block': 2, 'block': 16}, 'srcnn': {'num_feat': [16, 8]}},
        'scale': 2, 'iters': 30, 'val_freq': 10, 'batch_size': 4, 'gt_size': 48, 'lr': 1e-4,
        'print_freq': 10, 'milestones': [1000000], 'ema_decay': 0, 'train_set': 'T91', 'val_sets': ['Set5'],
        'recalibrate_batches': 4,
    },
    'cpu': {
        'description': 'EDSR and SRCNN pairs, sized for 2 CPU cores in under 45 minutes; train on T91, validate on '
                       'Set5',
        'networks': {'edsr': {'num_feat': 32, 'num_block': 4, 'block': 32}, 'srcnn': {}},
        'scale': 2, 'iters': 1500, 'val_freq': 100, 'batch_size': 16, 'gt_size': 64, 'lr': 1e-4,
        'print_freq': 50, 'milestones': [1000000], 'ema_decay': 0, 'train_set': 'T91', 'val_sets': ['Set5'],
        'recalibrate_batches': 16,
    },
    'paper': {
        'description': "the seed paper's schedule on DIV2K (EDSR recipe, 300k iterations): a GPU job",
        'networks': {'edsr': {}, 'srcnn': {}},
        'scale': 2, 'iters': 300000, 'val_freq': 5000, 'batch_size': 16, 'gt_size': 96, 'lr': 1e-4,
        'print_freq': 100, 'milestones': [200000], 'ema_decay': 0.999, 'train_set': 'DIV2K',
        'val_sets': ['Set5'], 'recalibrate_batches': 16,
    },
}


def arm_name(preset, pair, arm):
    if arm == 'baseline':
        pair = SHARED_BASELINE.get(pair, pair)
    return f'study_{preset}_{pair}_{arm}'


def arm_label(preset, pair, arm):
    """The arm's network type, with the pair's own deconv settings (e.g. ``DeconvSRCNN (conv 2, block 16)``)."""
    net = network_options(preset, pair, arm)
    own = PAIRS[pair][1] if arm == 'deconv' else {}
    details = [f"conv {', '.join(map(str, own['deconv_layers']))}" if 'deconv_layers' in own else None,
               f"block {own['block']}" if 'block' in own else None]
    details = ', '.join(d for d in details if d)
    return f"{net['type']} ({details})" if details else net['type']


def network_options(preset, pair, arm):
    """The arm's ``network_g``: the pair's network, the preset's sizes, and the deconv settings if any."""
    baseline, deconv = deepcopy(PAIRS[pair])
    sizes = dict(PRESETS[preset]['networks'][SHARED_BASELINE.get(pair, pair)])
    deconv_only = {k: sizes.pop(k) for k in ('block', ) if k in sizes}
    net = baseline
    if arm == 'deconv':
        net = {**baseline, **deconv, **deconv_only}
    net.update(sizes)
    net['upscale'] = PRESETS[preset]['scale']
    return net


def build_options(preset, pair, arm, datasets, seed=0):
    """BasicSR training options for one arm.

    Args:
        preset (str): Preset name.
        pair (str): 'edsr' or 'srcnn'.
        arm (str): 'baseline' or 'deconv'.
        datasets (dict): ``{'train': options, 'val': [options, ...]}``: BasicSR dataset options (``name``,
            ``type``, roots, ``io_backend``) of the prepared sets, as ``prepare_datasets`` returns them.
        seed (int): Seed shared by both arms.
    """
    p = PRESETS[preset]
    train = {**datasets['train'], 'phase': 'train', 'gt_size': p['gt_size'],
             'use_hflip': True, 'use_rot': True, 'num_worker_per_gpu': 1, 'batch_size_per_gpu': p['batch_size'],
             'dataset_enlarge_ratio': 100, 'prefetch_mode': None}
    vals = {f'val_{i}': {**val, 'phase': 'val'} for i, val in enumerate(datasets['val'])}
    return {
        # DeconvSRModel recalibrates FastDeconv statistics before each validation; for a network without
        # FastDeconv (the baselines) it is SRModel.
        'name': arm_name(preset, pair, arm), 'model_type': 'DeconvSRModel', 'scale': p['scale'], 'num_gpu': 'auto',
        'manual_seed': seed,
        'datasets': {'train': train, **vals},
        'network_g': network_options(preset, pair, arm),
        'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None},
        'train': {
            'ema_decay': p['ema_decay'],
            'optim_g': {'type': 'Adam', 'lr': p['lr'], 'weight_decay': 0, 'betas': [0.9, 0.99]},
            'scheduler': {'type': 'MultiStepLR', 'milestones': p['milestones'], 'gamma': 0.5},
            'total_iter': p['iters'], 'warmup_iter': -1,
            'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'},
        },
        'val': {'val_freq': p['val_freq'], 'save_img': False, 'recalibrate_batches': p['recalibrate_batches'],
                'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': p['scale'], 'test_y_channel': True}}},
        'logger': {'print_freq': p['print_freq'], 'save_checkpoint_freq': p['val_freq'], 'use_tb_logger': True,
                   'wandb': {'project': None, 'resume_id': None}},
        'dist_params': {'backend': 'nccl', 'port': 29500},
    }


def is_finished(out, name):
    return osp.isfile(osp.join(out, 'experiments', name, 'models', 'net_g_latest.pth'))


_ITER = re.compile(r'\[epoch:\s*\d+, iter:\s*([\d,]+)')
_TIME = re.compile(r'time \(data\): ([\d.]+)')


def run_arm(out, option_file, name, progress=None, done_before=0):
    """Train one arm in a subprocess (resuming if it was interrupted); its console output goes to a log."""
    log_path = osp.join(out, 'logs', f'{name}.log')
    os.makedirs(osp.dirname(log_path), exist_ok=True)
    command = [sys.executable, '-m', 'deconv_basicsr.train', '-opt', option_file, '--auto_resume']
    with open(log_path, 'a') as log, subprocess.Popen(
            command, cwd=out, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        for line in proc.stdout:
            log.write(line)
            match = _ITER.search(line)
            if progress is not None and match:
                progress.n = done_before + int(match.group(1).replace(',', ''))
                progress.refresh()
    if proc.returncode != 0:
        raise RuntimeError(f'training {name} failed (exit {proc.returncode}); see {log_path}')


def read_curve(out, name, dataset, total_iter):
    """Validation PSNR by iteration from the arm's tensorboard events (the last value of a repeated step).

    BasicSR validates once more after its loop, one step past ``total_iter``, on the same weights as the
    validation at ``total_iter``: that point is dropped.
    """
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    curve = {}
    events = EventAccumulator(osp.join(out, 'tb_logger', name), size_guidance={'scalars': 0})
    events.Reload()
    tag = f'metrics/{dataset}/psnr'
    if tag in events.Tags()['scalars']:
        for event in events.Scalars(tag):
            curve[event.step] = event.value
    return sorted((step, value) for step, value in curve.items() if step <= total_iter)


def seconds_per_iter(out, name):
    """Median of the iteration times BasicSR logged for the arm (validation excluded)."""
    times = []
    for log in glob.glob(osp.join(out, 'experiments', name, f'train_{name}_*.log')):
        with open(log) as f:
            times += [float(m.group(1)) for m in _TIME.finditer(f.read())]
    return statistics.median(times) if times else math.nan


def first_reaching(curve, target):
    return next((it for it, psnr in curve if psnr >= target), None)


def late_swing(curve):
    """Median absolute change between consecutive validations over the second half of the curve."""
    late = [psnr for _, psnr in curve[len(curve) // 2:]]
    return statistics.median(abs(b - a) for a, b in zip(late, late[1:])) if len(late) > 1 else math.nan


def write_outputs(out, preset, dataset, results):
    """``curves.csv``, ``{pair}.png`` and ``summary.md`` from ``results[pair][arm] = (curve, sec/iter)``."""
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot as plt

    p = PRESETS[preset]
    with open(osp.join(out, 'curves.csv'), 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['pair', 'arm', 'network', 'iter', f'psnr_{dataset}_y'])
        for pair, arms in results.items():
            for arm, (curve, _) in arms.items():
                for it, psnr in curve:
                    writer.writerow([pair, arm, network_options(preset, pair, arm)['type'], it, f'{psnr:.4f}'])

    lines = [f'# Convergence study, preset `{preset}`', '', p['description'] + '.', '',
             f"x{p['scale']}, {p['iters']} iterations, batch {p['batch_size']}, {p['gt_size']}x{p['gt_size']} HR "
             f"crops, Adam {p['lr']:g}, L1, same seed for both arms; validation PSNR on {dataset} "
             f"(Y channel, border {p['scale']}) every {p['val_freq']} iterations.", '',
             '| pair | baseline final | deconv final | difference | baseline best | deconv best | '
             'deconv reaches baseline final at | late swing baseline | late swing deconv | s/iter baseline | '
             's/iter deconv |',
             '|---|---|---|---|---|---|---|---|---|---|---|']
    for pair, arms in results.items():
        (base_curve, base_time), (dec_curve, dec_time) = arms['baseline'], arms['deconv']
        names = [arm_label(preset, pair, arm) for arm in ARMS]
        fig, ax = plt.subplots(figsize=(6, 4))
        for arm, curve, label in zip(ARMS, (base_curve, dec_curve), names):
            if curve:
                ax.plot(*zip(*curve), marker='.', label=label)
        ax.set_xlabel('iteration')
        ax.set_ylabel(f'PSNR on {dataset} (dB, Y)')
        ax.set_title(f'{names[0]} vs {names[1]}, x{p["scale"]} ({preset})')
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(osp.join(out, f'{pair}.png'), dpi=120)
        plt.close(fig)
        if not (base_curve and dec_curve):
            lines.append(f'| {pair} | no validation yet | | | | | | | | | |')
            continue
        base_final, dec_final = base_curve[-1][1], dec_curve[-1][1]
        reach = first_reaching(dec_curve, base_final)
        lines.append(f'| {names[0]} / {names[1]} | {base_final:.3f} | {dec_final:.3f} | {dec_final - base_final:+.3f} '
                     f'| {max(v for _, v in base_curve):.3f} | {max(v for _, v in dec_curve):.3f} '
                     f"| {reach if reach is not None else 'never'} | {late_swing(base_curve):.3f} "
                     f'| {late_swing(dec_curve):.3f} | {base_time:.3f} | {dec_time:.3f} |')
    lines += ['', 'Late swing: median absolute change (dB) between consecutive validations over the second half '
              'of training.', 'Curves: ' + ', '.join(f'`{pair}.png`' for pair in results) + '; values in `curves.csv`.',
              '']
    with open(osp.join(out, 'summary.md'), 'w') as f:
        f.write('\n'.join(lines))
    return '\n'.join(lines)


def _paired(name, gt, lq, backend='disk'):
    return {'name': name, 'type': 'PairedImageDataset', 'dataroot_gt': gt, 'dataroot_lq': lq,
            'io_backend': {'type': backend}, 'filename_tmpl': '{}'}


def prepare_datasets(preset, out, data=None):
    """BasicSR dataset options for the preset's train and validation sets, preparing LR images as needed.

    Args:
        preset (str): Preset name.
        out (str): Study folder; prepared images go to ``out/data``.
        data (str | None): Folder holding the preset's sets as HR image folders (``T91/``, ``Set5/``, ...;
            e.g. the shared benchmark folder), or, for ``DIV2K``, BasicSR's ``DIV2K/`` LMDBs. None: the
            embedded dataset (photos shipped with scikit-image) replaces the preset's sets.

    Returns:
        dict: ``{'train': options, 'val': [options, ...]}``.
    """
    from deconv_basicsr.data.benchmark import prepare_benchmark
    from deconv_basicsr.data.embedded import prepare_embedded

    p = PRESETS[preset]
    scale = p['scale']
    out = osp.abspath(out)
    if data is None:
        root = osp.join(out, 'data', 'Embedded')
        prepare_embedded(root, scales=(scale, ))
        return {
            'train': _paired('Embedded', osp.join(root, 'Embedded_train_HR_sub.lmdb'),
                             osp.join(root, f'Embedded_train_LR_bicubic_X{scale}_sub.lmdb'), 'lmdb'),
            'val': [_paired('Embedded_valid', osp.join(root, 'valid', f'GTmod{scale}'),
                            osp.join(root, 'valid', f'LRbicx{scale}'))],
        }

    def prepared(name):
        if name == 'DIV2K':
            root = osp.join(osp.abspath(data), 'DIV2K')
            return _paired(name, osp.join(root, 'DIV2K_train_HR_sub.lmdb'),
                           osp.join(root, f'DIV2K_train_LR_bicubic_X{scale}_sub.lmdb'), 'lmdb')
        ready = osp.join(data, 'benchmark', name)  # already in the layout of scripts/prepare_benchmark.py
        if osp.isdir(osp.join(ready, f'GTmod{scale}')):
            return _paired(name, *(osp.abspath(osp.join(ready, f'{kind}{scale}')) for kind in ('GTmod', 'LRbicx')))
        hr = osp.join(data, name)
        if not osp.isdir(hr):
            raise FileNotFoundError(f"--data {data}: no folder {name}/ of HR images (preset {preset} needs "
                                    f"{[p['train_set']] + p['val_sets']})")
        return _paired(name, *prepare_benchmark(hr, osp.join(out, 'data', name), scales=(scale, ))[scale])

    return {'train': prepared(p['train_set']), 'val': [prepared(name) for name in p['val_sets']]}


def run_study(preset, datasets, out, pairs=None, seed=0):
    """Train every arm of ``pairs`` (default: ``DEFAULT_PAIRS``) under ``preset`` and write the study's outputs.

    Args:
        preset (str): A key of ``PRESETS``.
        datasets (dict): name -> BasicSR dataset options for the preset's train and validation sets.
        out (str): Output folder (created).
        pairs (list[str] | None): Subset of ``PAIRS``.
        seed (int): Seed shared by every arm.

    Returns:
        str: The summary (Markdown).
    """
    from tqdm import tqdm

    pairs = list(pairs or DEFAULT_PAIRS)
    out = osp.abspath(out)
    os.makedirs(osp.join(out, 'options'), exist_ok=True)
    iters = PRESETS[preset]['iters']
    jobs = list({arm_name(preset, pair, arm): (pair, arm) for pair in pairs for arm in ARMS}.values())
    progress = tqdm(total=iters * len(jobs), desc=f'study {preset}', unit='it', dynamic_ncols=True)
    for index, (pair, arm) in enumerate(jobs):
        name = arm_name(preset, pair, arm)
        progress.set_postfix_str(name)
        if is_finished(out, name):
            progress.n = iters * (index + 1)
            progress.refresh()
            continue
        option_file = osp.join(out, 'options', f'{name}.yml')
        with open(option_file, 'w') as f:
            yaml.safe_dump(build_options(preset, pair, arm, datasets, seed), f, sort_keys=False)
        run_arm(out, option_file, name, progress, done_before=iters * index)
    progress.close()

    dataset = datasets['val'][0]['name']
    results = {
        pair: {arm: (read_curve(out, arm_name(preset, pair, arm), dataset, iters),
                     seconds_per_iter(out, arm_name(preset, pair, arm)))
               for arm in ARMS}
        for pair in pairs
    }
    return write_outputs(out, preset, dataset, results)
