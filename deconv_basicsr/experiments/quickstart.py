"""The README's quickstart, rerun as written, and the record of its figures (``docs/quickstart/runs.json``).

``run_quickstart`` runs the README's two commands (``prepare_embedded.py``, then training with
``options/quickstart_deconv_edsr_x2.yml``) in a fresh folder, so the user's ``experiments/`` is left alone,
and returns one record entry: the final validation PSNR the log states, the seconds each command took,
and the machine (CPU, torch's CPU capability, torch, threads, load average before and after: other jobs on
the machine). On one CPU capability, torch version and number of threads the PSNR is bit-reproducible;
across them it is not (the threads split the sums differently), so the README quotes the PSNR of each that
the record holds, and a timing with its machine.
"""
import json
import os
import re
import subprocess
import sys
import time
from os import path as osp

OPTION_FILE = osp.join('options', 'quickstart_deconv_edsr_x2.yml')
NAME = 'quickstart_deconv_edsr_x2'
_PSNR = re.compile(r'Validation Embedded\s*\n\s*# psnr: ([\d.]+)')


def final_psnr(log_text):
    """The PSNR of the last ``Validation Embedded`` entry of a training log, or None."""
    found = _PSNR.findall(log_text)
    return float(found[-1]) if found else None


def _timed(command, cwd, env):
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=env, check=True, stdin=subprocess.DEVNULL)
    return round(time.perf_counter() - start, 1)


def run_quickstart(project, work, threads=None):
    """Run the quickstart's two commands in ``work`` (a new folder), with ``OMP_NUM_THREADS=threads``.

    Args:
        project (str): The project's folder (its ``scripts/`` and ``options/``).
        work (str): Folder to run in; it receives ``datasets/`` and ``experiments/``.
        threads (int | None): Threads of the training process, as the README's ``OMP_NUM_THREADS``; None:
            torch's default (one per core), as the command without the prefix. The PSNR depends on it.

    Returns:
        dict: One entry of the record (see the module).
    """
    import torch

    from deconv_basicsr.experiments.timing import device_name

    os.makedirs(work, exist_ok=False)
    env = dict(os.environ)
    env.pop('OMP_NUM_THREADS', None)
    if threads is not None:
        env['OMP_NUM_THREADS'] = str(threads)
    load_before = [round(x, 2) for x in os.getloadavg()]
    prepare = _timed([sys.executable, osp.join(project, 'scripts', 'prepare_embedded.py')], work, env)
    train = _timed([sys.executable, '-m', 'deconv_basicsr.train', '-opt', osp.join(project, OPTION_FILE)], work, env)
    folder = osp.join(work, 'experiments', NAME)
    logs = sorted(name for name in os.listdir(folder) if name.startswith(f'train_{NAME}_') and name.endswith('.log'))
    with open(osp.join(folder, logs[-1])) as f:
        psnr = final_psnr(f.read())
    return {'date': time.strftime('%Y-%m-%d', time.gmtime()), 'psnr': psnr, 'prepare_seconds': prepare,
            'train_seconds': train, 'cpu': device_name(torch.device('cpu')),
            'capability': torch.backends.cpu.get_cpu_capability(), 'torch': torch.__version__,
            'threads': torch.get_num_threads() if threads is None else threads,
            'load_average_before': load_before, 'load_average_after': [round(x, 2) for x in os.getloadavg()]}


def read_record(path):
    """The entries of a record file (a JSON list), or an empty list when there is none."""
    if not osp.isfile(path):
        return []
    with open(path) as f:
        return json.load(f)


def append_record(path, entry):
    """Append ``entry`` to the record file ``path``; returns every entry."""
    entries = read_record(path) + [entry]
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    with open(path, 'w') as f:
        json.dump(entries, f, indent=1)
        f.write('\n')
    return entries


def psnr_by_machine(entries):
    """``{(capability, torch, threads): sorted distinct PSNRs}`` of the record's entries."""
    found = {}
    for entry in entries:
        found.setdefault((entry['capability'], entry['torch'], entry['threads']), set()).add(entry['psnr'])
    return {key: sorted(values) for key, values in found.items()}
