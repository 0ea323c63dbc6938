"""Faults and bad input: non-finite activations, exact resume, bad options, corrupt images and LMDB entries."""
import re
import warnings
from pathlib import Path

import lmdb
import pytest
import torch

import deconv_basicsr.plugin  # noqa: F401  (BasicSR importable, the archs and the model registered)
from basicsr.data.paired_image_dataset import PairedImageDataset

from deconv_basicsr import training
from deconv_basicsr.training import OptionPathError, check_startup
from deconv_basicsr.training.images import replacements as image_replacements
from deconv_basicsr.training.pipeline import swapped
from deconv_basicsr.prepare import write_lmdb_from_folder
from deconv_basicsr.layers import FastDeconv
from helpers import (check_python, run_python, sr_options, sr_test_options, tiny_network,
                     write_image_pairs, write_options)

# ---- non-finite activations ---------------------------------------------------------------------------


@pytest.mark.parametrize('bad', [float('nan'), float('inf')])
def test_non_finite_batch_skips_the_running_update_with_a_warning(bad):
    layer = FastDeconv(4, 4, 3, padding=1, block=4)
    x = torch.randn(2, 4, 9, 9)
    layer(x)
    mean, deconv = layer.running_mean.clone(), layer.running_deconv.clone()

    poisoned = x.clone()
    poisoned[1, 2, 4, 4] = bad
    with pytest.warns(RuntimeWarning, match='training step 2 are not finite.*left unchanged'):
        layer(poisoned)
    assert torch.equal(layer.running_mean, mean) and torch.equal(layer.running_deconv, deconv)
    assert layer.num_batches_tracked == 2  # the step is counted (it drives the freeze schedule)

    with warnings.catch_warnings():
        warnings.simplefilter('error')  # a finite batch updates again, silently
        layer(x)
    assert not torch.equal(layer.running_mean, mean)
    assert torch.isfinite(layer.running_mean).all() and torch.isfinite(layer.running_deconv).all()


# ---- exact resume -------------------------------------------------------------------------------------


def test_resume_mid_epoch_with_workers_is_exact(tmp_path):
    """8 steps straight, against 4 steps, stop, and resume to 8 from ``path.resume_state``: bit-for-bit the
    same weights and FastDeconv statistics (net_g and EMA). Step 4 is mid-epoch (6 images, batch 2) and two
    data-loader workers load the crops, so the resumed run must continue the epoch at its 2nd batch and
    draw the crops and flips the uninterrupted run drew."""
    gt_dir, lq_dir = write_image_pairs(tmp_path / 'data', num_images=6)
    network_g = tiny_network('DeconvEDSR', block=8)

    def options(name, total_iter):
        opt = sr_options(name, gt_dir, lq_dir, network_g, total_iter=8, checkpoint_freq=4)
        opt['train']['total_iter'] = total_iter  # the same schedule (milestones) for both runs
        opt['datasets']['train']['num_worker_per_gpu'] = 2
        del opt['datasets']['val'], opt['val']
        return write_options(tmp_path / f'{name}.yml', opt)

    train = ['-m', 'deconv_basicsr.train', '-opt']
    check_python(train + [options('straight', 8)], cwd=tmp_path)
    resumed = options('resumed', 4)
    check_python(train + [resumed], cwd=tmp_path)
    state = tmp_path / 'experiments' / 'resumed' / 'training_states' / '4.state'
    second = check_python(train + [resumed, '--force_yml', 'train:total_iter=8', f'path:resume_state={state}'],
                          cwd=tmp_path)
    assert 'Resuming training from epoch: 1, iter: 4.' in second.stdout

    straight = torch.load(tmp_path / 'experiments' / 'straight' / 'models' / 'net_g_8.pth')
    resumed = torch.load(tmp_path / 'experiments' / 'resumed' / 'models' / 'net_g_8.pth')
    for params in ('params', 'params_ema'):
        assert straight[params].keys() == resumed[params].keys()
        assert any(key.endswith('running_deconv') for key in straight[params])
        for key, value in straight[params].items():
            assert torch.equal(resumed[params][key], value), f'{params}.{key}'


# ---- bad options ---------------------------------------------------------------------------------------


def _opt(tmp_path, network_g=None, **paths):
    gt_dir, lq_dir = write_image_pairs(tmp_path / 'data', num_images=2)
    opt = sr_options('bad', paths.get('gt', gt_dir), paths.get('lq', lq_dir), network_g or tiny_network('EDSR'))
    opt.update(is_train=True, dist=False, rank=0, world_size=1, auto_resume=False)
    return opt


def test_missing_dataset_paths_fail_first_naming_their_keys(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    opt = _opt(tmp_path, gt='datasets/nowhere/gt', lq='datasets/nowhere/lq')
    opt['path']['training_states'] = str(tmp_path / 'experiments' / 'bad' / 'training_states')
    with pytest.raises(OptionPathError) as info:
        check_startup(opt)  # the start of the training pipeline
    message = str(info.value)
    assert "datasets.train.dataroot_gt: 'datasets/nowhere/gt' does not exist" in message
    assert 'datasets.val.dataroot_lq' in message

    test_opt = sr_test_options('bad_test', 'datasets/nowhere/gt', 'data/lq', tiny_network('EDSR'), 'net.pth')
    test_opt.update(is_train=False, path={**test_opt['path'], 'results_root': str(tmp_path / 'results')})
    with pytest.raises(OptionPathError, match=r'datasets.test_1.dataroot_gt: .*\n.*path.pretrain_network_g'):
        check_startup(test_opt)  # the start of the test pipeline
    assert not (tmp_path / 'results').exists()


def test_the_training_pipeline_reports_a_missing_path_before_creating_anything(tmp_path):
    """The project's pipeline (where the start-up checks are on: docs/compatibility.md)."""
    opt = _opt(tmp_path, gt=str(tmp_path / 'missing_gt'))
    options = write_options(tmp_path / 'bad.yml', opt)
    result = run_python(['-m', 'deconv_basicsr.train', '-opt', options], cwd=tmp_path)
    assert result.returncode == 1
    assert 'OptionPathError' in result.stdout and 'datasets.train.dataroot_gt' in result.stdout
    assert not (tmp_path / 'experiments').exists()


@pytest.mark.parametrize('network_g,key', [
    (tiny_network('DeconvEDSR', block=0), 'network_g.block'),
    (tiny_network('DeconvEDSR', sampling_stride=-1), 'network_g.sampling_stride'),
    (tiny_network('DeconvEDSR', blok=8), 'network_g.blok'),
    ({'type': 'DeconvSRCNN', 'num_in_ch': 3, 'num_out_ch': 3, 'kernel_size': [4, 3, 3]}, 'network_g.kernel_size'),
    ({'type': 'FastDeconv', 'in_channels': 3, 'out_channels': 3, 'kernel_size': 3, 'stride': 0}, 'network_g.stride'),
    ({'type': 'DeconvNet', 'arch': tiny_network('EDSR'), 'include': ['trunk.*']}, 'network_g.include'),
    ({'type': 'DeconvEDSRR'}, 'network_g.type'),
], ids=['block', 'sampling_stride', 'unknown', 'kernel', 'stride', 'pattern', 'type'])
def test_bad_network_options_are_named_by_key(tmp_path, network_g, key):
    with pytest.raises(training.OptionValueError, match=rf'^{key}\b.*fix {key}'):
        check_startup(_opt(tmp_path, network_g))  # the one validation point, before any network is built


def test_bad_network_option_fails_at_start_up_in_a_few_lines(tmp_path):
    """The message leads, with a suggestion; no traceback (unless --debug), nothing written."""
    opt = _opt(tmp_path, tiny_network('DeconvEDSR', num_blok=2))
    options = write_options(tmp_path / 'bad.yml', opt)
    result = run_python(['-m', 'deconv_basicsr.train', '-opt', options], cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith('network_g.num_blok: unknown option for DeconvEDSR; did you mean num_block?')
    assert len(lines) <= 3 and 'Traceback' not in result.stdout, result.stdout
    assert not (tmp_path / 'experiments').exists()

    opt['network_g'] = tiny_network('DeconvEDSR', block=0)
    result = run_python(['-m', 'deconv_basicsr.train', '-opt', write_options(tmp_path / 'bad.yml', opt), '--debug'],
                        cwd=tmp_path)
    assert result.returncode == 1 and 'Traceback' in result.stdout
    assert 'OptionValueError: network_g.block (DeconvEDSR): FastDeconv: block must be' in result.stdout
    assert not (tmp_path / 'experiments').exists()


@pytest.mark.parametrize('network_g,message', [
    ({'type': 'DeconvNet', 'arch': tiny_network('EDSR', num_blocks=1)},
     'network_g.arch.num_blocks: unknown option for EDSR; did you mean arch.num_block?'),
    ({'type': 'DeconvNet', 'arch': {'type': 'EDSR', 'num_in_ch': 3, 'num_out_ch': 3}, 'include': ['body.*'],
      'block': 0}, 'network_g.block (DeconvNet): FastDeconv: block must be'),
    ({'type': 'EDSR', 'num_out_ch': 3}, 'network_g.num_in_ch: required by EDSR, missing'),
], ids=['nested', 'nested_value', 'missing'])
def test_network_options_are_checked_against_the_arch_signature(tmp_path, network_g, message):
    with pytest.raises(training.OptionValueError) as info:
        check_startup(_opt(tmp_path, network_g))
    assert str(info.value).startswith(message)


def test_model_options_are_checked_at_start_up(tmp_path):
    opt = _opt(tmp_path)
    opt['model_type'] = 'DeconvSRModl'
    with pytest.raises(training.OptionValueError, match="^model_type: 'DeconvSRModl' is not a registered model; "
                                                      'did you mean DeconvSRModel?'):
        check_startup(opt)
    opt['model_type'], opt['val']['recalibrate_batches'] = 'DeconvSRModel', -1
    with pytest.raises(training.OptionValueError, match=r'^val.recalibrate_batches: DeconvSRModel takes an int >= 0'):
        check_startup(opt)


# ---- corrupt images and LMDB entries -------------------------------------------------------------------


def _dataset(gt, lq, backend='disk'):
    """BasicSR's dataset, reading images as the project's pipelines read them (``images.replacements``)."""
    return PairedImageDataset({'dataroot_gt': gt, 'dataroot_lq': lq, 'io_backend': {'type': backend},
                               'phase': 'val', 'scale': 2})


def test_truncated_png_is_named(tmp_path):
    gt_dir, lq_dir = write_image_pairs(tmp_path / 'data', num_images=2)
    bad = Path(lq_dir, '0001.png')
    bad.write_bytes(bad.read_bytes()[:40])
    dataset = _dataset(gt_dir, lq_dir)
    bad_index = [Path(p['lq_path']) for p in dataset.paths].index(bad)  # BasicSR lists folders unsorted
    with swapped(image_replacements()):
        assert dataset[1 - bad_index]['lq'].shape == (3, 16, 16)
        with pytest.raises(training.CorruptImageError,
                           match=rf'Cannot decode image {re.escape(str(bad))}: .*truncated'):
            dataset[bad_index]


def test_corrupt_and_missing_lmdb_entries_are_named(tmp_path):
    gt_dir, lq_dir = write_image_pairs(tmp_path / 'data', num_images=3)
    gt_lmdb, lq_lmdb = str(tmp_path / 'gt.lmdb'), str(tmp_path / 'lq.lmdb')
    write_lmdb_from_folder(gt_dir, gt_lmdb)
    write_lmdb_from_folder(lq_dir, lq_lmdb)
    env = lmdb.open(lq_lmdb)
    with env.begin(write=True) as txn:
        txn.put(b'0001', txn.get(b'0001')[:50])  # truncated value
        txn.delete(b'0002')  # listed in meta_info.txt, gone from the database
    env.close()

    dataset = _dataset(gt_lmdb, lq_lmdb, 'lmdb')
    with swapped(image_replacements()):
        assert dataset[0]['gt'].shape == (3, 32, 32)
        with pytest.raises(training.CorruptImageError, match=rf"key '0001' of LMDB {re.escape(lq_lmdb)}"):
            dataset[1]
        with pytest.raises(KeyError, match=rf"No entry for key '0002' of LMDB {re.escape(lq_lmdb)}"):
            dataset[2]


def test_images_are_checked_at_start_up(tmp_path):
    """Validation images are decoded; LMDB training sets are checked for their keys, decoded on request."""
    opt = _opt(tmp_path)
    val = opt['datasets']['val']
    bad = Path(val['dataroot_lq'], '0001.png')
    good = bad.read_bytes()
    bad.write_bytes(good[:40])
    with pytest.raises(training.CorruptImageError, match=rf'Cannot decode image {re.escape(str(bad))}'):
        check_startup(opt)
    bad.write_bytes(good)

    train = opt['datasets']['train']
    gt_lmdb, lq_lmdb = str(tmp_path / 'gt.lmdb'), str(tmp_path / 'lq.lmdb')
    write_lmdb_from_folder(train['dataroot_gt'], gt_lmdb)
    write_lmdb_from_folder(train['dataroot_lq'], lq_lmdb)
    train.update(dataroot_gt=gt_lmdb, dataroot_lq=lq_lmdb, io_backend={'type': 'lmdb'})
    check_startup(opt)
    env = lmdb.open(lq_lmdb)
    with env.begin(write=True) as txn:
        txn.put(b'0001', txn.get(b'0001')[:50])  # truncated value: found only when decoding
    env.close()
    check_startup(opt)
    with pytest.raises(training.CorruptImageError, match=rf"key '0001' of LMDB {re.escape(lq_lmdb)}"):
        check_startup(opt, all_images=True)
    env = lmdb.open(lq_lmdb)
    with env.begin(write=True) as txn:
        txn.delete(b'0000')  # listed in meta_info.txt, gone from the database
    env.close()
    missing = r"datasets.train: 1 key\(s\) of .*lq.lmdb/meta_info.txt are not in the LMDB \(first: '0000'\)"
    with pytest.raises(training.DatasetError, match=missing):
        check_startup(opt)
