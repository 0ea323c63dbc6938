"""Interrupted runs continue exactly: resuming mid-epoch, stopping on a signal, one run per experiment.

Every pipeline runs in a subprocess from ``tmp_path`` (the root path). "Bit-identical" compares every tensor
of the final checkpoint (weights, FastDeconv statistics, EMA) and of the final training state (optimizer and
scheduler state, random generators, the processes' local state).
"""
import os
import shlex
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

import deconv_basicsr.plugin  # noqa: F401  (BasicSR importable, the archs and the model registered)

from deconv_basicsr.prepare import write_lmdb_from_folder
from helpers import check_python, run_python, subprocess_env, write_image_pairs, write_options

QUICKSTART = Path(__file__).resolve().parents[2] / 'options' / 'quickstart_deconv_edsr_x2.yml'
TRAIN = ['-m', 'deconv_basicsr.train', '-opt']


def _tensors(obj, prefix=''):
    """Every tensor (and number) in a nested checkpoint or training state, by path."""
    if torch.is_tensor(obj):
        yield prefix, obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from _tensors(value, f'{prefix}.{key}')
    elif isinstance(obj, (list, tuple)):
        for index, value in enumerate(obj):
            yield from _tensors(value, f'{prefix}[{index}]')
    elif isinstance(obj, (int, float)):
        yield prefix, torch.tensor(obj)


def assert_bit_identical(experiment_a, experiment_b, iteration):
    """The checkpoint and training state of ``iteration`` are the same in both experiments, bit for bit."""
    for file in (f'models/net_g_{iteration}.pth', f'training_states/{iteration}.state'):
        a = dict(_tensors(torch.load(experiment_a / file)))
        b = dict(_tensors(torch.load(experiment_b / file)))
        assert a.keys() == b.keys(), file
        assert any('running_deconv' in key or 'exp_avg' in key for key in a), file  # not vacuous
        for key, value in a.items():
            assert torch.equal(value, b[key]), f'{file}: {key}'


def quickstart_options(tmp_path, name, total_iter):
    """The quickstart option file with a tiny network, on a tiny LMDB dataset: 30 batches per epoch."""
    with open(QUICKSTART) as f:
        opt = yaml.safe_load(f)
    data = tmp_path / 'data'
    if not (data / 'gt.lmdb').exists():
        gt_dir, lq_dir = write_image_pairs(data, num_images=6, size=48)
        write_lmdb_from_folder(gt_dir, str(data / 'gt.lmdb'))
        write_lmdb_from_folder(lq_dir, str(data / 'lq.lmdb'))
    train, val = opt['datasets']['train'], opt['datasets']['val']
    train.update(dataroot_gt=str(data / 'gt.lmdb'), dataroot_lq=str(data / 'lq.lmdb'), gt_size=32,
                 batch_size_per_gpu=2)
    val.update(dataroot_gt=str(data / 'gt'), dataroot_lq=str(data / 'lq'))
    opt['network_g'].update(num_feat=8, num_block=1, block=8)
    opt['name'], opt['num_gpu'] = name, 0
    opt['train']['total_iter'] = total_iter
    opt['train']['scheduler']['milestones'] = [8]
    # Recalibration on the last 4 batches at each validation: after a resume at 6, the validation at 8 needs
    # batches 5 and 6, from before the resume.
    opt['val'].update(val_freq=4, recalibrate_batches=4)
    opt['logger'].update(print_freq=1, save_checkpoint_freq=6)
    return write_options(tmp_path / f'{name}.yml', opt)


def psnr_lines(output):
    """The validation PSNRs a run printed, in order, each with its "Best: ... @ ... iter"."""
    return [line.strip() for line in output.splitlines() if '# psnr: ' in line]


def test_quickstart_resumed_in_epoch_0_is_exact(tmp_path):
    """The issue's case: the quickstart (LMDB, a data-loader worker, DeconvSRModel, validation) stopped at 6
    and resumed to 12 with --auto_resume, in the middle of epoch 0, against 12 straight."""
    straight = check_python(TRAIN + [quickstart_options(tmp_path, 'straight', 12)], cwd=tmp_path)
    stopped = quickstart_options(tmp_path, 'stopped', 6)
    check_python(TRAIN + [stopped], cwd=tmp_path)
    resumed = check_python(TRAIN + [stopped, '--auto_resume', '--force_yml', 'train:total_iter=12'], cwd=tmp_path)
    assert 'Resuming training from epoch: 0, iter: 6.' in resumed.stdout
    experiments = tmp_path / 'experiments'
    assert_bit_identical(experiments / 'straight', experiments / 'stopped', 12)
    # Validations at 8 and 12, and the final one: the one at 8 recalibrates on batches 5 to 8.
    assert len(psnr_lines(resumed.stdout)) == 3
    assert psnr_lines(resumed.stdout) == psnr_lines(straight.stdout)[-3:]
    # The state at 6 carries the best validation so far (at 4), which the resumed run's "Best" counts.
    state = torch.load(experiments / 'stopped' / 'training_states' / '6.state')
    best = state['local_states'][0]['best_metric_results']
    assert [record['iter'] for metrics in best.values() for record in metrics.values()] == [4], best


def interruptible_options(tmp_path, name='run'):
    """Everything a training step carries along: EMA, a deconvolved input layer on a freeze schedule, the
    fast mode with statistics pooled over two refreshes, recalibration, gradient clipping, a slower group for
    the deconvolved layers, two data-loader workers (disk), validation. 60 iterations, 12 per epoch."""
    gt_dir, lq_dir = write_image_pairs(tmp_path / 'data', num_images=24, size=32)
    network = dict(type='DeconvEDSR', num_in_ch=3, num_out_ch=3, num_feat=8, num_block=1, upscale=2, block=8,
                   deconv_modules=['conv_first', 'body'], input_layer={'freeze': True, 'freeze_iter': 2},
                   stats_period=3, stats_batches=2)
    paths = dict(dataroot_gt=gt_dir, dataroot_lq=lq_dir, io_backend=dict(type='disk'))
    opt = {
        'name': name, 'model_type': 'DeconvSRModel', 'scale': 2, 'num_gpu': 0, 'manual_seed': 3,
        'datasets': {
            'train': dict(name='train', type='PairedImageDataset', **paths, gt_size=16, use_hflip=True, use_rot=True,
                          num_worker_per_gpu=2, batch_size_per_gpu=2, dataset_enlarge_ratio=1, prefetch_mode=None),
            'val': dict(name='val', type='PairedImageDataset', **paths),
        },
        'network_g': network,
        'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None},
        'train': {'ema_decay': 0.9, 'optim_g': {'type': 'Adam', 'lr': 1e-3, 'betas': [0.9, 0.99]},
                  'grad_clip_norm': 0.5, 'deconv_lr_scale': 0.5,
                  'scheduler': {'type': 'MultiStepLR', 'milestones': [30], 'gamma': 0.5}, 'total_iter': 60,
                  'warmup_iter': -1, 'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'}},
        'val': {'val_freq': 10, 'save_img': False, 'recalibrate_batches': 4,
                'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': 2, 'test_y_channel': False}}},
        'logger': {'print_freq': 1, 'save_checkpoint_freq': 10, 'use_tb_logger': False,
                   'wandb': {'project': None, 'resume_id': None}},
    }
    return write_options(tmp_path / f'{name}.yml', opt)


def start(args, cwd):
    """Start ``python *args`` with its output (stdout and stderr) readable line by line."""
    return subprocess.Popen([sys.executable, *args], cwd=cwd, env=subprocess_env(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)


def read_until(process, marker):
    """Lines of ``process`` up to the first that contains ``marker`` (all of them if it never comes)."""
    lines = []
    for line in process.stdout:
        lines.append(line)
        if marker in line:
            break
    return lines


def test_sigint_saves_the_iteration_and_the_printed_command_resumes_exactly(tmp_path):
    options = interruptible_options(tmp_path)
    run = start(TRAIN + [options], tmp_path)
    read_until(run, 'iter:      13,')
    run.send_signal(signal.SIGINT)
    output = run.communicate(timeout=300)[0]
    assert run.returncode == 128 + signal.SIGINT, output
    assert 'Traceback' not in output
    stopped_at = int(output.split('Stopped by SIGINT after iteration ')[1].split(':')[0])
    assert 13 <= stopped_at < 60
    experiment = tmp_path / 'experiments' / 'run'
    assert (experiment / 'training_states' / f'{stopped_at}.state').is_file()
    assert (experiment / 'models' / f'net_g_{stopped_at}.pth').is_file()
    assert not (tmp_path / 'experiments' / '.run.lock').exists()  # released at exit

    command = shlex.split(output.split(' with:\n')[1].splitlines()[0])
    assert command[1:] == ['-m', 'deconv_basicsr.train', '-opt', options, '--auto_resume']
    resumed = check_python(command[1:], cwd=tmp_path)
    assert f'Resuming training from epoch: {stopped_at // 12}, iter: {stopped_at}.' in resumed.stdout

    check_python(TRAIN + [options, '--force_yml', 'name=straight'], cwd=tmp_path)
    assert_bit_identical(tmp_path / 'experiments' / 'straight', experiment, 60)


def test_a_second_signal_stops_at_once():
    code = ('import os, signal, time\n'
            'from deconv_basicsr.training.interruption import install_signal_handlers, stop_request\n'
            'install_signal_handlers()\n'
            'os.kill(os.getpid(), signal.SIGTERM)\n'
            'print("requested:", stop_request(), flush=True)\n'
            'os.kill(os.getpid(), signal.SIGTERM)\n'
            'time.sleep(30)\n'
            'print("still running")\n')
    result = run_python(['-c', code], timeout=60)
    assert f'requested: {int(signal.SIGTERM)}' in result.stdout
    assert 'SIGTERM again: stopping now, without saving.' in result.stdout
    assert result.returncode == -signal.SIGTERM and 'still running' not in result.stdout


def test_one_run_per_experiment_and_a_dead_holder_does_not_block(tmp_path):
    options = interruptible_options(tmp_path)
    first = start(TRAIN + [options, '--force_yml', 'train:total_iter=100000'], tmp_path)
    try:
        read_until(first, 'iter:       2,')
        second = run_python(TRAIN + [options, '--auto_resume'], cwd=tmp_path, timeout=120)
        assert second.returncode == 1
        assert f'run is being trained by PID {first.pid} on host {socket.gethostname()}' in second.stdout
        assert 'Traceback' not in second.stdout
    finally:
        first.kill()  # SIGKILL: no clean-up, the lock file stays
        first.communicate()
    assert (tmp_path / 'experiments' / '.run.lock').exists()
    check_python(TRAIN + [options, '--auto_resume', '--force_yml', 'train:total_iter=2'], cwd=tmp_path)


@pytest.mark.skipif(not hasattr(os, 'fork'), reason='torchrun on POSIX')
def test_sigint_to_torchrun_stops_every_process_at_one_iteration(tmp_path):
    """Two CPU processes: rank 0 writes the state of the iteration they agree on, the other waits for it."""
    from test_distributed import _free_port

    options = interruptible_options(tmp_path)
    run = start(['-m', 'torch.distributed.run', '--nproc_per_node=2', '--master_addr=127.0.0.1',
                 f'--master_port={_free_port()}'] + TRAIN + [options, '--launcher', 'pytorch', '--force_yml',
                                                                 'datasets:train:num_worker_per_gpu=0'], tmp_path)
    read_until(run, 'iter:      13,')
    run.send_signal(signal.SIGINT)
    output = run.communicate(timeout=300)[0]
    assert run.returncode != 0
    assert output.count('Stopped by SIGINT after iteration') == 1, output
    stopped_at = int(output.split('Stopped by SIGINT after iteration ')[1].split(':')[0])
    state = torch.load(tmp_path / 'experiments' / 'run' / 'training_states' / f'{stopped_at}.state')
    assert state['iter'] == stopped_at and len(state['rng_states']) == len(state['local_states']) == 2
    assert 'torchrun --nproc_per_node=2 -m deconv_basicsr.train' in output
