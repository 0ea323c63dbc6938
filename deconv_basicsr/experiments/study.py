"""The study of the paper's two claims: stages, data, and what is chosen from what.

Stages, in order (each skips what is done, so rerunning the same command continues the study):

1. ``screen``: every arm of every family at every learning rate, seed 0.
2. ``seeds``: the baseline and the best ``top_variants`` variants of each family (ranked by their final
   validation PSNR at their own best learning rate in the screening), seeds 1 and up, at the learning rates
   the comparisons rest on: the screened best rate of each of these arms.
3. ``diagnose``: the deconvolved SRCNN (conv2 arm) at ``diagnosis_lr`` with one change each (``DIAGNOSES``).
4. ``sweep_seeds``: the same arms and seeds at the family's other learning rates. It comes after the
   diagnosis so that a study stopped early holds the comparisons and the diagnosis first.
5. ``test``: the final checkpoint of every seed of each arm at its best learning rate (chosen on validation)
   through BasicSR's test pipeline on the test sets, and bicubic upsampling, for the final table.
6. ``timing``: training steps of every arm timed side by side in one process (the seconds axis).

After every stage the record (``curves.csv``, ``summary.md``, plots, ``table.csv``) is rewritten from what
exists, so an interrupted study leaves a consistent partial record. Runs the record's ``curves.csv`` holds
whole count as done, so the study also continues from a committed record on a machine without its runs.
"""
import json
import os
from os import path as osp

import yaml

from deconv_basicsr.experiments import curves as cv
from deconv_basicsr.experiments.design import DIAGNOSES, FAMILIES, PRESETS, Run, test_options, train_options
from deconv_basicsr.experiments.runner import is_finished, test_all, train_all

STAGES = ('screen', 'seeds', 'diagnose', 'sweep_seeds', 'test', 'timing')


def _paired(name, gt, lq, backend='disk'):
    return {'name': name, 'type': 'PairedImageDataset', 'dataroot_gt': gt, 'dataroot_lq': lq,
            'io_backend': {'type': backend}, 'filename_tmpl': '{}'}


def _centre_crops(hr_folder, out_dir, count, crop):
    """The first ``count`` images of ``hr_folder``, centre-cropped to ``crop``, as PNGs in ``out_dir``."""
    from deconv_basicsr.prepare.atomic import atomic_dir
    from deconv_basicsr.prepare.image_io import list_images, read_image, write_png
    if osp.isdir(out_dir):
        return out_dir
    with atomic_dir(out_dir) as work:
        for path in list_images(hr_folder)[:count]:
            img = read_image(path)
            top, left = max(0, (img.shape[0] - crop) // 2), max(0, (img.shape[1] - crop) // 2)
            write_png(osp.join(work, osp.splitext(osp.basename(path))[0] + '.png'),
                      img[top:top + crop, left:left + crop])
    return out_dir


def prepare_data(preset, out, data=None):
    """BasicSR dataset options: ``{'train': ..., 'val': ..., 'test': {name: ...}}``, preparing LR images.

    The dataset folders are given relative to ``out``, where the runs execute, so that a study folder still
    works when it is moved.

    Args:
        preset (Preset): The study's preset.
        out (str): Study folder; prepared images go to ``out/data``.
        data (str | None): Folder of HR image folders (``T91/``, ``Urban100/``, ``Set5/``, ...). None: the
            embedded dataset (photos shipped with scikit-image) stands in for every set.
    """
    from deconv_basicsr.prepare.benchmark import prepare_benchmark
    from deconv_basicsr.prepare.embedded import prepare_embedded

    scale, root = preset.scale, osp.join(out, 'data')

    def paired(name, gt, lq, backend='disk'):
        return _paired(name, osp.relpath(gt, out), osp.relpath(lq, out), backend)

    if data is None:
        emb = osp.join(root, 'Embedded')
        prepare_embedded(emb, scales=(scale, ))
        valid = paired('Embedded_valid', osp.join(emb, 'valid', f'GTmod{scale}'), osp.join(emb, 'valid', f'LRbicx{scale}'))
        return {'train': paired('Embedded', osp.join(emb, 'Embedded_train_HR_sub.lmdb'),
                                osp.join(emb, f'Embedded_train_LR_bicubic_X{scale}_sub.lmdb'), 'lmdb'),
                'val': valid, 'test': {'Embedded_valid': valid}}

    def hr(name):
        folder = osp.join(data, name)
        if not osp.isdir(folder):
            raise FileNotFoundError(f'--data {data}: no folder {name}/ of HR images; the study needs '
                                    f'{[preset.train_set, preset.val_set, *preset.test_sets]}')
        return folder

    def prepared(name, folder):
        return paired(name, *prepare_benchmark(folder, osp.join(root, name), scales=(scale, ))[scale])

    val_name = f'{preset.val_set}_val'
    crops = _centre_crops(hr(preset.val_set), osp.join(root, f'{val_name}_hr'), preset.val_images, preset.val_crop)
    return {'train': prepared(preset.train_set, hr(preset.train_set)), 'val': prepared(val_name, crops),
            'test': {name: prepared(name, hr(name)) for name in preset.test_sets}}


def screen_runs(preset):
    return [Run(family, arm, lr, 0) for family, variants in preset.families.items() for lr in preset.lrs[family]
            for arm in (FAMILIES[family][0], *variants)]


def read_records(out, preset, runs, val_set, recorded=None):
    """Curves of the finished ``runs``: ``{run: [(iteration, psnr, loss), ...]}``, from the run's BasicSR
    logs under ``out``, or else from ``recorded`` (a committed ``curves.csv``) where it holds the whole run:
    a study continued on another machine does not train again what its record already holds."""
    records = {}
    for run in runs:
        if is_finished(out, run.name, preset.iters[run.family]):
            records[run] = cv.read_run(out, run, val_set, preset.iters[run.family])
        elif recorded and recorded.get(run) and recorded[run][-1][0] == preset.iters[run.family]:
            records[run] = recorded[run]
    return records


def final_psnr(records, family, arm, lr, diagnosis=''):
    """Final validation PSNR of every finished seed of an arm at a learning rate: ``{seed: psnr}``."""
    return {run.seed: cv.final([(it, p) for it, p, _ in rows]) for run, rows in records.items()
            if (run.family, run.arm, run.lr, run.diagnosis) == (family, arm, lr, diagnosis)}


def best_lr(preset, records, family, arm):
    """The learning rate with the highest mean final validation PSNR over the seeds run (None if none)."""
    scores = {lr: cv.mean_sd(final_psnr(records, family, arm, lr).values())[0] for lr in preset.lrs[family]}
    scores = {lr: s for lr, s in scores.items() if s == s}
    return max(scores, key=scores.get) if scores else None


def top_variants(preset, records, family):
    """Variants ranked by final PSNR at their own best learning rate in the screening (seed 0)."""
    screened = {run: rows for run, rows in records.items() if run.seed == 0}

    def score(arm):
        finals = [final_psnr(screened, family, arm, lr).get(0, float('-inf')) for lr in preset.lrs[family]]
        return max(finals)

    return sorted(preset.families[family], key=score, reverse=True)[:preset.top_variants]


def seed_runs(preset, records, sweep=False):
    """Seeds 1 and up of the baseline and the top variants of each family, at the screened best learning rate
    of any of these arms (the rates their comparisons rest on), or with ``sweep`` at the family's other
    rates. Chosen on the screening (seed 0) alone, so the plan does not move as seeds finish."""
    screened = {run: rows for run, rows in records.items() if run.seed == 0}
    runs = []
    for family in preset.families:
        arms = (FAMILIES[family][0], *top_variants(preset, screened, family))
        compared = {best_lr(preset, screened, family, arm) for arm in arms}
        lrs = [lr for lr in preset.lrs[family] if (lr in compared) != sweep]
        runs += [Run(family, arm, lr, seed) for arm in arms for lr in lrs for seed in range(1, preset.seeds)]
    return runs


def diagnosis_runs(preset):
    if 'srcnn' not in preset.families:
        return []
    runs = []
    for name, change in DIAGNOSES.items():
        if name not in preset.diagnoses:
            continue
        arms = ('dsrcnn_c2', 'srcnn') if 'optim' in change else ('dsrcnn_c2', )
        runs += [Run('srcnn', arm, preset.diagnosis_lr, 0, name) for arm in arms]
    return runs


def tested_runs(preset, records):
    """Every seed of the baseline and top variants of each family, at the arm's best learning rate."""
    runs = []
    for family in preset.families:
        for arm in (FAMILIES[family][0], *top_variants(preset, records, family)):
            lr = best_lr(preset, records, family, arm)
            runs += [Run(family, arm, lr, seed) for seed in range(preset.seeds)
                     if lr is not None and Run(family, arm, lr, seed) in records]
    return runs


def run_tests(preset, out, records, datasets, jobs, threads, options_dir):
    """Test the final checkpoints of ``tested_runs`` and bicubic upsampling, from the project's test option
    files in ``options_dir`` (their metrics and settings; datasets, network and checkpoint replaced)."""

    def template(name):
        with open(osp.join(options_dir, name)) as f:
            return yaml.safe_load(f)

    family_template = {'srcnn': 'test_srcnn_x2.yml', 'edsr': 'test_edsr_x2.yml'}
    options = [test_options(preset, run, datasets['test'], template(family_template[run.family]))
               for run in tested_runs(preset, records)]
    bicubic = template('test_bicubic_x2.yml')
    bicubic.update(name='test_bicubic', scale=preset.scale, path={},
                   datasets={f'test_{i + 1}': {**ds, 'phase': 'test'} for i, ds in enumerate(datasets['test'].values())})
    bicubic['network_g'] = {**bicubic['network_g'], 'upscale': preset.scale}
    test_all(out, [bicubic, *options], jobs, threads)


def run_study(preset_name, out, options_dir, data=None, jobs=2, threads=1, stages=STAGES, record=None):
    """Run the ``stages`` of the study (see the module docstring) in ``out`` and write its record (curves,
    summary, table, timing, plots) into ``record`` (default: ``out``). ``options_dir``: the project's
    ``options/`` folder, whose test option files the test stage starts from.

    Returns:
        str: The summary (Markdown).
    """
    from deconv_basicsr.experiments import report, timing

    preset = PRESETS[preset_name]
    out = osp.abspath(out)
    record = osp.abspath(record or out)
    os.makedirs(out, exist_ok=True)
    datasets = prepare_data(preset, out, data)
    val_set = datasets['val']['name']

    recorded_path = osp.join(record, 'curves.csv')
    recorded = cv.read_csv(recorded_path) if osp.isfile(recorded_path) else {}

    def planned():
        """Every run of the study as far as it can be known: the seeds stage follows from the screening."""
        screened = read_records(out, preset, screen_runs(preset), val_set, recorded)
        return {'screen': screen_runs(preset), 'seeds': seed_runs(preset, screened),
                'diagnose': diagnosis_runs(preset), 'sweep_seeds': seed_runs(preset, screened, sweep=True)}

    def records():
        return read_records(out, preset, [run for runs in planned().values() for run in runs], val_set, recorded)

    def train(runs, desc):
        """Train the ``runs`` the record does not hold yet."""
        done = records()
        train_all(out, [train_options(preset, run, datasets) for run in runs if run not in done], jobs, threads,
                  desc=desc)

    def write():
        return report.write_record(out, record, preset_name, preset, records(), val_set, planned())

    if 'screen' in stages:
        train(screen_runs(preset), 'screen')
        write()
    if 'seeds' in stages:
        train(seed_runs(preset, records()), 'seeds')
        write()
    if 'diagnose' in stages:
        train(diagnosis_runs(preset), 'diagnose')
        write()
    if 'sweep_seeds' in stages:
        train(seed_runs(preset, records(), sweep=True), 'sweep_seeds')
        write()
    if 'test' in stages:
        # A run held only by the record is trained again for its checkpoint: training on the CPU is
        # deterministic, so with the same software and processor it retraces the recorded curve.
        missing = [run for run in tested_runs(preset, records())
                   if not is_finished(out, run.name, preset.iters[run.family])]
        train_all(out, [train_options(preset, run, datasets) for run in missing], jobs, threads, desc='checkpoints')
        run_tests(preset, out, records(), datasets, jobs, threads, options_dir)
    timing_path = osp.join(record, 'timing.json')
    if 'timing' in stages and not osp.isfile(timing_path):
        arms = sorted({run.arm for run in records()})
        os.makedirs(record, exist_ok=True)
        with open(timing_path, 'w') as f:
            json.dump(timing.study_step_times(preset, arms), f, indent=1)
    return write()
