"""Run BasicSR trainings and tests in subprocesses, a few at a time, with one progress bar over all of them.

Every run is one BasicSR experiment under ``out/`` (``experiments/<name>``, ``tb_logger/<name>``), started
with ``python -m deconv_basicsr.train -opt <file> --auto_resume``: a run that was interrupted continues from
its last training state, and a finished one (``models/net_g_latest.pth``) is skipped. A run the non-finite
guard stops (exit code 3, ``deconv_basicsr.training.nonfinite``) diverged: its folder gets ``diverged.txt`` (the
guard's report), it is not trained again, and the other runs go on. Console output goes to
``out/logs/<name>.log``. Every start of a training run appends a row to ``out/machines.csv`` (run, time,
CPU, torch's CPU capability, torch version): on one machine and capability training is bit-reproducible,
across processors it is not, so the record says where each run trained.
"""
import csv
import os
import re
import subprocess
import sys
import shutil
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from os import path as osp

import yaml

import deconv_basicsr.plugin  # noqa: F401  (BasicSR importable)
from basicsr.utils.options import ordered_yaml

from deconv_basicsr.experiments.tables import read_test_logs
from deconv_basicsr.training.options import load_options

_ITER = re.compile(r'\[epoch:\s*\d+, iter:\s*([\d,]+)')
MACHINE_FIELDS = ('run', 'started', 'cpu', 'capability', 'torch')
#: The marker of a run stopped by the non-finite guard, in its experiment folder.
DIVERGED = 'diverged.txt'


def record_machine(out, name):
    """Append the machine a run (re)starts on to ``out/machines.csv``."""
    import torch

    from deconv_basicsr.experiments.timing import device_name

    path = osp.join(out, 'machines.csv')
    new = not osp.isfile(path)
    with open(path, 'a', newline='') as f:
        writer = csv.writer(f)
        if new:
            writer.writerow(MACHINE_FIELDS)
        writer.writerow([name, time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()), device_name(torch.device('cpu')),
                         torch.backends.cpu.get_cpu_capability(), torch.__version__])


def is_finished(out, name, total_iter):
    """Whether the run ``name`` under ``out`` has trained its ``total_iter`` iterations. A run started under
    that name for another number of iterations raises: counting or resuming it would mix two schedules."""
    folder = osp.join(out, 'experiments', name)
    options = osp.join(folder, f'{name}.yml')  # BasicSR's copy of the options the run was last started with
    if osp.isfile(options):
        started = load_options(options)['train']['total_iter']
        if started != total_iter:
            raise ValueError(f'{folder} was started for {started} iterations, not {total_iter}: move it, '
                             f'tb_logger/{name} and results/test_{name} away to train that run again at this '
                             'length')
    return osp.isfile(osp.join(folder, 'models', 'net_g_latest.pth'))


def resumed_iteration(out, name):
    """The iteration the run ``name`` under ``out`` resumes from: that of its latest training state (the one
    ``--auto_resume`` loads), 0 when it has none."""
    from deconv_basicsr.compat.resume import latest_training_state

    state = latest_training_state({'name': name, 'path': {'training_states': osp.join(out, 'experiments', name,
                                                                                      'training_states')}})
    return 0 if state is None else int(osp.splitext(osp.basename(state))[0])


def is_diverged(out, name):
    """Whether the run ``name`` under ``out`` was stopped by the non-finite guard (it is not trained again)."""
    return osp.isfile(osp.join(out, 'experiments', name, DIVERGED))


def write_options(out, opt):
    """Write ``opt`` to ``out/options/<name>.yml`` and return the path."""
    path = osp.join(out, 'options', f"{opt['name']}.yml")
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        # BasicSR's dumper: options read by the one loader are ordered mappings (the same text as plain dicts).
        yaml.dump(opt, f, Dumper=ordered_yaml()[1], sort_keys=False)
    return path


def _run(command, out, log_path, threads, on_line=None, accept=(0, )):
    """Run ``command`` in ``out``, its output appended to ``log_path``; returns its exit code, one of ``accept``."""
    os.makedirs(osp.dirname(log_path), exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    with open(log_path, 'a') as log, subprocess.Popen(
            command, cwd=out, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env) as proc:
        for line in proc.stdout:
            log.write(line)
            log.flush()
            if on_line is not None:
                on_line(line)
    if proc.returncode not in accept:
        raise RuntimeError(f'{command[2]} {osp.basename(command[4])} failed (exit {proc.returncode}); see {log_path}')
    return proc.returncode


def _run_all(function, items, jobs):
    """Call ``function`` on every item, ``jobs`` at a time, in order. Once a call has failed, or on Ctrl-C, no
    other call starts: those running end (a training saves its state on Ctrl-C), then the first failure is
    raised."""
    stop = threading.Event()

    def call(item):
        if stop.is_set():
            return
        try:
            function(item)
        except BaseException:
            stop.set()
            raise

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(call, item) for item in items]
        try:
            wait(futures, return_when=FIRST_EXCEPTION)
        finally:
            stop.set()
    for future in futures:
        future.result()


def train_all(out, options, jobs=1, threads=1, desc='training', entry='deconv_basicsr.train', after=None):
    """Train every option dict of ``options`` not finished yet, in their order, ``jobs`` at a time on
    ``threads`` threads each, each with ``python -m ENTRY -opt FILE --auto_resume`` (``entry``: a module that
    runs BasicSR's training pipeline). ``after``, if given, is called with a run's option dict once the run has
    ended (finished or diverged), in the worker that trained it, before that worker takes the next run.

    The progress bar counts iterations over all runs, finished ones included, with the rate and ETA.
    """
    from tqdm import tqdm

    from deconv_basicsr.training.nonfinite import EXIT_CODE

    out = osp.abspath(out)
    totals = {opt['name']: opt['train']['total_iter'] for opt in options}
    ended = {name for name, total in totals.items() if is_finished(out, name, total) or is_diverged(out, name)}
    todo = [opt for opt in options if opt['name'] not in ended]
    # Interrupted runs count from where they resume, so that the rate and the ETA are those of this session.
    done = {name: total if name in ended else resumed_iteration(out, name) for name, total in totals.items()}
    progress = tqdm(total=sum(totals.values()), initial=sum(done.values()), desc=desc, unit='it',
                    dynamic_ncols=True, smoothing=0.05)
    progress.set_postfix_str(f'{len(options) - len(todo)}/{len(options)} runs done')
    lock = threading.Lock()
    finished = [len(options) - len(todo)]

    def train(opt):
        name = opt['name']
        option_file = write_options(out, opt)

        def on_line(line):
            match = _ITER.search(line)
            if match:
                with lock:
                    now = int(match.group(1).replace(',', ''))
                    progress.update(max(0, now - done[name]))
                    done[name] = max(done[name], now)

        with lock:
            record_machine(out, name)
        log_path = osp.join(out, 'logs', f'{name}.log')
        code = _run([sys.executable, '-m', entry, '-opt', option_file, '--auto_resume'], out, log_path, threads,
                    on_line, accept=(0, EXIT_CODE))
        if code == EXIT_CODE:
            with open(log_path) as f:
                report = f.read().splitlines()[-6:]
            os.makedirs(osp.join(out, 'experiments', name), exist_ok=True)
            with open(osp.join(out, 'experiments', name, DIVERGED), 'w') as f:
                f.write('\n'.join(report) + '\n')
        with lock:
            progress.update(totals[name] - done[name])
            done[name] = totals[name]
            finished[0] += 1
            progress.set_postfix_str(f'{finished[0]}/{len(options)} runs done')
        if after is not None:
            after(opt)

    _run_all(train, todo, jobs)
    progress.close()


def is_tested(out, opt):
    """Whether the results folder of test options ``opt`` holds a metric for each of its test sets. A test
    killed midway (its process group ended, so nothing could clean up) leaves a folder that holds fewer."""
    logged = read_test_logs(osp.join(out, 'results', opt['name']))
    return all(logged.get(dataset['name']) for dataset in opt['datasets'].values())


def test_all(out, options, jobs=1, threads=1):
    """Run BasicSR's test pipeline for every option dict whose results are not all there yet."""
    from tqdm import tqdm

    out = osp.abspath(out)
    todo = [opt for opt in options if not is_tested(out, opt)]
    progress = tqdm(total=len(options), initial=len(options) - len(todo), desc='testing', unit='run')

    def test(opt):
        option_file = write_options(out, opt)
        # What a killed test left (BasicSR would archive it beside the new folder).
        shutil.rmtree(osp.join(out, 'results', opt['name']), ignore_errors=True)
        _run([sys.executable, '-m', 'deconv_basicsr.test', '-opt', option_file], out,
             osp.join(out, 'logs', f"{opt['name']}.log"), threads)
        progress.update()

    _run_all(test, todo, jobs)
    progress.close()
