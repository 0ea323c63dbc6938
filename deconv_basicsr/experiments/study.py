"""The study of the paper's two claims: every condition (a pair, a learning rate, a length) over its seeds.

Stages (each skips what is done, so rerunning the same command continues the study):

1. ``train``: every run of the preset, seed by seed over the conditions, the longest runs of a seed first
   (``training_order``); once the last run of a seed has ended, that seed's final checkpoints are tested
   (``test``) and the record is rewritten with every run finished so far. A free worker takes the next
   seed's runs while a seed's last ones finish, so no core waits on one long run, and a study stopped early
   holds whole seeds and at most a few runs of the next.
2. ``test``: the final checkpoint of every finished run through BasicSR's test pipeline on the test sets,
   and bicubic upsampling; one row per run and set in ``tests.csv``.
3. ``timing``: training steps of every arm timed side by side in one process (the seconds axis), once.

Only runs trained in the study folder are tested: the test stage never assumes that a run retrained on
another machine retraces its recorded curve (across processors a chaotic run drifts, ``docs/study.md``).
Runs the committed ``curves.csv`` holds whole count as trained, so the study continues from a committed
record on a machine without its runs; their test rows come from the committed ``tests.csv``.
"""
import json
import os
import threading
from collections import Counter
from os import path as osp

from deconv_basicsr.experiments import curves as cv
from deconv_basicsr.experiments.design import PRESETS, test_options, train_options
from deconv_basicsr.experiments.runner import is_finished, test_all, train_all
from deconv_basicsr.training.options import load_options

STAGES = ('train', 'test', 'timing')


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


def training_order(runs):
    """``runs`` in training order: seed by seed, the runs of a seed with the most iterations first (in the
    order of ``runs`` among equals, so both arms of a pair stay together), so that a seed's longest run does
    not start last and hold up the end of the study."""
    return sorted(runs, key=lambda run: (run.seed, -run.iters))


def read_records(out, preset, runs, val_set, recorded=None):
    """Curves of the finished ``runs``: ``{run: [(iteration, psnr, psnr_running, loss), ...]}``, from the
    run's BasicSR logs under ``out``, or else from ``recorded`` (a committed ``curves.csv``) where it holds
    the whole run: a study continued on another machine does not train again what its record holds."""
    records = {}
    for run in runs:
        if is_finished(out, run.name, run.iters):
            records[run] = cv.read_run(out, run.name, run.iters, val_set)
        elif recorded and recorded.get(run) and recorded[run][-1][0] == run.iters:
            records[run] = recorded[run]
    return records


def run_tests(preset, out, runs, datasets, jobs, threads, options_dir):
    """Test the final checkpoints of ``runs`` (those trained under ``out``) and bicubic upsampling, from the
    project's test option files in ``options_dir`` (their metrics and settings; datasets, network and
    checkpoint replaced)."""

    def template(name):
        return load_options(osp.join(options_dir, name))

    family_template = {'srcnn': 'test_srcnn_x2.yml', 'edsr': 'test_edsr_x2.yml'}
    options = [test_options(preset, run, datasets['test'], template(family_template[run.family]))
               for run in runs if is_finished(out, run.name, run.iters)]
    bicubic = template('test_bicubic_x2.yml')
    bicubic.update(name='test_bicubic', scale=preset.scale, path={},
                   datasets={f'test_{i + 1}': {**ds, 'phase': 'test'} for i, ds in enumerate(datasets['test'].values())})
    bicubic['network_g'] = {**bicubic['network_g'], 'upscale': preset.scale}
    test_all(out, [bicubic, *options], jobs, threads)


def run_study(preset_name, out, options_dir, data=None, jobs=2, threads=1, stages=STAGES, record=None):
    """Run the ``stages`` of the study (see the module docstring) in ``out`` and write its record (curves,
    tests, summary, timing, plots) into ``record`` (default: ``out``). ``options_dir``: the project's
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
    runs = preset.runs()

    recorded_path = osp.join(record, 'curves.csv')
    recorded = cv.read_csv(recorded_path) if osp.isfile(recorded_path) else {}

    def write():
        records = read_records(out, preset, runs, val_set, recorded)
        return report.write_record(out, record, preset_name, preset, records, val_set)

    if 'train' in stages:
        done = read_records(out, preset, runs, val_set, recorded)
        todo = training_order([run for run in runs if run not in done])
        left = Counter(run.seed for run in todo)
        lock = threading.Lock()

        def ended(opt):
            seed = opt['manual_seed']
            with lock:
                left[seed] -= 1
                if not left[seed]:  # the seed's last run: test the seed (in this worker's slot), rewrite the record
                    if 'test' in stages:
                        run_tests(preset, out, [run for run in runs if run.seed == seed], datasets, 1, threads,
                                  options_dir)
                    write()

        train_all(out, [train_options(preset, run, datasets) for run in todo], jobs, threads, after=ended)
    if 'test' in stages:
        run_tests(preset, out, runs, datasets, jobs, threads, options_dir)
    timing_path = osp.join(record, 'timing.json')
    if 'timing' in stages and not osp.isfile(timing_path):
        times = timing.study_step_times(preset, sorted({run.arm for run in runs}))
        os.makedirs(record, exist_ok=True)
        with open(timing_path, 'w') as f:
            json.dump(times, f, indent=1)
    return write()
