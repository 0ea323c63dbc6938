"""Shared test helpers: tiny paired datasets, BasicSR option dicts, and subprocess runners.

Import them in test files with ``from helpers import ...`` (pytest puts ``tests/`` on ``sys.path``);
``conftest.py`` wraps the common ones as fixtures.

* ``write_image_pairs(root, ...)``: writes a tiny paired SR dataset (smooth random PNGs, GT and LQ folders
  with the same file names), usable by BasicSR's ``PairedImageDataset`` with ``io_backend: disk``.
* ``tiny_network(arch, ...)``: ``network_g`` options of a tiny EDSR-like network (8 features, 1 block).
* ``sr_options(name, gt_dir, lq_dir, network_g, ...)``: a complete ``SRModel`` training option dict for
  the CPU (``num_gpu: 0``): a few iterations, validation, checkpoints, EMA; ``sr_test_options`` for testing.
* ``model_options(network_g, ...)``: options for ``basicsr.models.build_model`` of a training model on the
  CPU without datasets (Adam, L1, EMA), to call ``feed_data`` / ``optimize_parameters`` on directly.
* ``write_options(path, opt)``: writes an option dict as YAML.
* ``copy_basicsr_script(root, 'train.py')``: copies BasicSR's installed, unedited ``train.py`` or
  ``test.py`` to ``root/basicsr/``, so that running it from ``root`` makes ``root`` the root path.
* ``run_python(args, cwd, env=...)``: runs ``sys.executable`` with ``args`` in a subprocess; pipelines must
  run in subprocesses, because BasicSR attaches its log file handler once per process.
  ``check_python`` also asserts success and shows the output otherwise.
* ``subprocess_env(**overrides)``: the environment for those subprocesses, with the auto-load switch
  (``DECONV_BASICSR_AUTOLOAD``) removed unless given.
"""
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import yaml

AUTOLOAD_ENV = 'DECONV_BASICSR_AUTOLOAD'


def write_image_pairs(root, num_images=4, size=32, scale=2, seed=0):
    """Write ``num_images`` smooth random RGB images as a paired SR dataset.

    Args:
        root (str | Path): Folder that receives ``gt/`` and ``lq/``.
        num_images (int): Number of image pairs.
        size (int): GT side length (a multiple of ``scale``).
        scale (int): Downscaling factor of the LQ images.
        seed (int): Seed of the random images.

    Returns:
        tuple[str, str]: The GT and LQ folders.
    """
    rng = np.random.default_rng(seed)
    gt_dir, lq_dir = Path(root, 'gt'), Path(root, 'lq')
    gt_dir.mkdir(parents=True, exist_ok=True)
    lq_dir.mkdir(parents=True, exist_ok=True)
    for index in range(num_images):
        # Upsampled noise: smooth content, so PSNR values are meaningful.
        coarse = rng.uniform(0, 255, size=(size // 4, size // 4, 3)).astype(np.float32)
        gt = np.clip(cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC), 0, 255).astype(np.uint8)
        lq = cv2.resize(gt, (size // scale, size // scale), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(gt_dir / f'{index:04d}.png'), gt)
        cv2.imwrite(str(lq_dir / f'{index:04d}.png'), lq)
    return str(gt_dir), str(lq_dir)


def tiny_network(arch='EDSR', scale=2, **kwargs):
    """``network_g`` options of a tiny EDSR-like arch (``EDSR``, ``DeconvEDSR``): 8 features, 1 block."""
    return dict(type=arch, num_in_ch=3, num_out_ch=3, num_feat=8, num_block=1, upscale=scale, **kwargs)


def sr_options(name, gt_dir, lq_dir, network_g, scale=2, total_iter=4, checkpoint_freq=2, val_freq=2,
               gt_size=16, batch_size=2, ema_decay=0.999):
    """A complete BasicSR ``SRModel`` training option dict for a CPU run (``num_gpu: 0``).

    The same folders serve for training and validation; L1 loss, Adam, MultiStepLR, PSNR on RGB.
    Keep the number of images a multiple of ``batch_size``: BasicSR counts iterations per epoch with
    ``ceil`` but drops the last incomplete batch, so it would stop before ``total_iter`` otherwise.
    """
    paths = dict(dataroot_gt=gt_dir, dataroot_lq=lq_dir, io_backend=dict(type='disk'))
    return {
        'name': name,
        'model_type': 'SRModel',
        'scale': scale,
        'num_gpu': 0,
        'manual_seed': 0,
        'datasets': {
            'train': dict(name='tiny_train', type='PairedImageDataset', **paths, gt_size=gt_size, use_hflip=True,
                          use_rot=True, num_worker_per_gpu=0, batch_size_per_gpu=batch_size,
                          dataset_enlarge_ratio=1, prefetch_mode=None),
            'val': dict(name='tiny_val', type='PairedImageDataset', **paths),
        },
        'network_g': network_g,
        'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None},
        'train': {
            'ema_decay': ema_decay,
            'optim_g': {'type': 'Adam', 'lr': 1e-3, 'weight_decay': 0, 'betas': [0.9, 0.99]},
            'scheduler': {'type': 'MultiStepLR', 'milestones': [total_iter // 2], 'gamma': 0.5},
            'total_iter': total_iter,
            'warmup_iter': -1,
            'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'},
        },
        'val': {
            'val_freq': val_freq,
            'save_img': False,
            'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': scale, 'test_y_channel': False}},
        },
        'logger': {'print_freq': 1, 'save_checkpoint_freq': checkpoint_freq, 'use_tb_logger': False,
                   'wandb': {'project': None, 'resume_id': None}},
        'dist_params': {'backend': 'nccl', 'port': 29500},
    }


def sr_test_options(name, gt_dir, lq_dir, network_g, model_path, scale=2):
    """A BasicSR ``SRModel`` test option dict (``num_gpu: 0``) that evaluates ``model_path`` (PSNR, RGB)."""
    return {
        'name': name,
        'model_type': 'SRModel',
        'scale': scale,
        'num_gpu': 0,
        'manual_seed': 0,
        'datasets': {
            'test_1': dict(name='tiny_test', type='PairedImageDataset', dataroot_gt=gt_dir, dataroot_lq=lq_dir,
                           io_backend=dict(type='disk')),
        },
        'network_g': network_g,
        'path': {'pretrain_network_g': str(model_path), 'strict_load_g': True, 'param_key_g': 'params_ema'},
        'val': {
            'save_img': False,
            'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': scale, 'test_y_channel': False}},
        },
    }


def write_options(path, opt):
    """Write the option dict ``opt`` as YAML to ``path``; returns ``path`` as a string."""
    Path(path).write_text(yaml.safe_dump(opt, sort_keys=False), encoding='utf-8')
    return str(path)


def copy_basicsr_script(root, script='train.py'):
    """Copy BasicSR's installed, unedited ``script`` to ``root/basicsr/``; returns its relative path.

    Run it from ``root`` (``python basicsr/train.py -opt ...``): BasicSR computes the root path as the
    script's parent folder, so experiments land in ``root``. The file is found without importing basicsr.
    """
    import importlib.util

    source = Path(importlib.util.find_spec('basicsr').origin).parent / script
    target = Path(root, 'basicsr', script)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return str(Path('basicsr', script))


def subprocess_env(**overrides):
    """Environment for test subprocesses: ours, without the auto-load switch unless given here."""
    env = {key: value for key, value in os.environ.items() if key != AUTOLOAD_ENV}
    env.update({key: str(value) for key, value in overrides.items()})
    return env


def run_python(args, cwd=None, env=None, timeout=600):
    """Run ``sys.executable *args`` in a subprocess; returns the ``CompletedProcess`` (text, merged output)."""
    return subprocess.run([sys.executable, *args], cwd=cwd, env=subprocess_env() if env is None else env,
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout)


def check_python(args, cwd=None, env=None, timeout=600):
    """Like ``run_python``, and assert that it succeeded (showing its output otherwise)."""
    result = run_python(args, cwd=cwd, env=env, timeout=timeout)
    assert result.returncode == 0, f'{args} failed with code {result.returncode}:\n{result.stdout}'
    return result


def model_options(network_g, model_type='SRModel', ema_decay=0.999, **extra):
    """Options for ``build_model`` of an in-memory training model on the CPU (no datasets)."""
    opt = {
        'name': 'test', 'model_type': model_type, 'num_gpu': 0, 'is_train': True, 'dist': False, 'rank': 0,
        'world_size': 1, 'scale': 2,
        'network_g': network_g,
        'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None},
        'train': {
            'ema_decay': ema_decay,
            'optim_g': {'type': 'Adam', 'lr': 1e-3, 'betas': [0.9, 0.99]},
            'scheduler': {'type': 'MultiStepLR', 'milestones': [100], 'gamma': 0.5},
            'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'},
        },
    }
    opt.update(extra)
    return opt


def load_script(name):
    """Import ``scripts/<name>.py`` as a module, to call its ``main(argv)`` in this process."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / 'scripts' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def correlated_input(c, seed=0, n=2, h=13, w=11, dtype=None):
    """Float64 images (n, c, h, w) with correlated channels and a non-zero mean, so that whitening and the
    mean correction both matter; ``dtype`` converts them."""
    import torch
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(c, c, generator=g, dtype=torch.float64)
    x = torch.randn(n, c, h, w, generator=g, dtype=torch.float64)
    x = torch.einsum('dc,nchw->ndhw', mix, x) * 3 + 1
    return x if dtype is None else x.to(dtype)
