"""Every option file parses with BasicSR, builds its network, follows the paper's protocol and the
project's path conventions; missing paths are reported with their option key."""
import os
import sys
from pathlib import Path

import pytest
import torch
import yaml

import deconv_basicsr.plugin  # noqa: F401  (BasicSR importable, the archs and the model registered)
from basicsr.archs import build_network
from basicsr.utils.options import ordered_yaml

from deconv_basicsr.training import OptionPathError, check_option_file, check_option_paths
from deconv_basicsr.training.options import read_options as parse_options
from helpers import run_python

OPTIONS = Path(__file__).resolve().parents[2] / 'options'
TRAINED = [('edsr', s) for s in (2, 3, 4)] + [('edsr_deconv', s) for s in (2, 3, 4)] + \
    [('srcnn', s) for s in (2, 3)] + [('srcnn_deconv', s) for s in (2, 3)]
TEST_SETS = ['Set5', 'Set14', 'B100', 'Urban100', 'DIV2K100']
QUICKSTART = 'quickstart_deconv_edsr_x2.yml'
ALL_FILES = sorted([f'train_{m}_x{s}.yml' for m, s in TRAINED] + [f'test_{m}_x{s}.yml' for m, s in TRAINED] +
                   [f'test_bicubic_x{s}.yml' for s in (2, 3, 4)] + [QUICKSTART])


def load(name):
    with open(OPTIONS / name) as f:
        return yaml.load(f, Loader=ordered_yaml()[0])


def test_option_files_are_all_there():
    assert sorted(p.name for p in OPTIONS.glob('*.yml')) == ALL_FILES


@pytest.mark.parametrize('name', ALL_FILES)
def test_parses_with_basicsr_and_builds_network(name, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, 'argv', ['train.py', '-opt', str(OPTIONS / name)])
    opt, _ = parse_options(str(tmp_path), is_train=not name.startswith('test_'))
    assert opt['num_gpu'] == torch.cuda.device_count()  # 'auto': 0 on a CPU-only machine
    net = build_network(dict(opt['network_g'])).eval()
    with torch.no_grad():
        out = net(torch.rand(1, 3, 6, 6))
    assert out.shape == (1, 3, 6 * opt['scale'], 6 * opt['scale'])


@pytest.mark.parametrize('name', ALL_FILES)
def test_paper_protocol(name):
    opt = load(name)
    scale = opt['scale']
    assert opt['network_g']['upscale'] == scale
    assert opt['name'] == name[:-4].replace('train_', '', 1).replace('test_', '', 1)
    for metric in opt['val']['metrics'].values():
        assert metric['crop_border'] == scale and metric['test_y_channel'] is True
    for phase, dataset in opt['datasets'].items():
        if phase == 'train':
            assert dataset['io_backend']['type'] == 'lmdb'
            assert dataset['dataroot_lq'].endswith(f'_LR_bicubic_X{scale}_sub.lmdb')
        else:
            assert dataset['dataroot_gt'].endswith(f'/GTmod{scale}')
            assert dataset['dataroot_lq'] == dataset['dataroot_gt'].replace(f'GTmod{scale}', f'LRbicx{scale}')


@pytest.mark.parametrize('model,scale', TRAINED)
def test_train_and_test_files_agree(model, scale):
    train, test = load(f'train_{model}_x{scale}.yml'), load(f'test_{model}_x{scale}.yml')
    assert train['network_g'] == test['network_g']
    assert train['datasets']['train']['dataroot_gt'] == 'datasets/DIV2K/DIV2K_train_HR_sub.lmdb'
    assert train['datasets']['train']['gt_size'] == 48 * scale
    assert train['datasets']['val']['dataroot_gt'] == f'datasets/benchmark/Set5/GTmod{scale}'
    assert [d['name'] for d in test['datasets'].values()] == TEST_SETS
    assert 'ssim' in test['val']['metrics']
    assert test['path']['pretrain_network_g'] == f'experiments/{model}_x{scale}/models/net_g_latest.pth'
    assert test['path']['param_key_g'] == 'params_ema' and train['train']['ema_decay'] > 0
    pretrain = train['path']['pretrain_network_g']
    if model.startswith('edsr') and scale > 2:
        # BasicSR's recipe: x3/x4 start from the x2 model, skipping the upsampler's mismatched weights.
        assert pretrain == f'experiments/{model}_x2/models/net_g_latest.pth'
        assert load(f'train_{model}_x2.yml')['name'] == f'{model}_x2'
        assert train['path']['strict_load_g'] is False
    else:
        assert pretrain is None


def test_quickstart_is_small_and_on_the_embedded_dataset():
    opt = load(QUICKSTART)
    assert opt['datasets']['train']['dataroot_gt'].startswith('datasets/Embedded/')
    assert opt['datasets']['val']['dataroot_gt'] == 'datasets/Embedded/valid/GTmod2'
    assert opt['network_g']['type'] == 'DeconvEDSR'
    assert opt['train']['total_iter'] <= 1000 and opt['val']['val_freq'] < opt['train']['total_iter']


def test_bad_paths_name_their_option_key(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OptionPathError) as info:
        check_option_file(str(OPTIONS / 'train_edsr_deconv_x2.yml'))
    message = str(info.value)
    assert "datasets.train.dataroot_gt: 'datasets/DIV2K/DIV2K_train_HR_sub.lmdb' does not exist" in message
    assert 'datasets.val.dataroot_lq' in message and 'prepare_div2k.py' in message
    assert 'prepare_benchmark.py' in message

    with pytest.raises(OptionPathError, match='path.pretrain_network_g.*train_edsr_x3.yml'):
        check_option_file(str(OPTIONS / 'test_edsr_x3.yml'))
    with pytest.raises(OptionPathError, match='prepare_embedded.py'):
        check_option_file(str(OPTIONS / QUICKSTART))

    # An LMDB folder without its data is reported as incomplete; complete paths pass.
    opt = load(QUICKSTART)
    for key in ('dataroot_gt', 'dataroot_lq'):
        os.makedirs(opt['datasets']['train'][key])
        os.makedirs(opt['datasets']['val'][key])
    with pytest.raises(OptionPathError, match=r'datasets.train.dataroot_lq: .* is not a complete LMDB'):
        check_option_paths(opt)
    for key in ('dataroot_gt', 'dataroot_lq'):
        for file in ('data.mdb', 'meta_info.txt'):
            Path(opt['datasets']['train'][key], file).touch()
    check_option_paths(opt)


@pytest.mark.parametrize('content,message', [
    (None, 'Option file bad.yml: not found (relative to {cwd})'),
    ('', 'Option file bad.yml: empty (it holds no options)'),
    ('name: x\nnum_gpu: 0\ndatasets:\n  train: {a: 1\npath: {}\n',
     "Option file bad.yml: not valid YAML at line 5, column 5: did not find expected ',' or '}' (while parsing a "
     'flow mapping from line 4, column 10)'),
    ('name: x\n\tnum_gpu: 0\n',
     'Option file bad.yml: not valid YAML at line 2, column 1: found a tab character that violates indentation '
     '(while scanning a plain scalar from line 1, column 7)'),
    ('- name\n', 'Option file bad.yml: holds a list, not options (key: value lines)'),
    ('name: x\nnum_gpu: 0\n', 'Option file bad.yml: no datasets, path (BasicSR needs name, num_gpu, datasets, path)'),
], ids=['missing', 'empty', 'yaml', 'tab', 'list', 'keys'])
def test_option_file_errors_take_two_lines_without_traceback(tmp_path, content, message):
    if content is not None:
        (tmp_path / 'bad.yml').write_text(content)
    result = run_python(['-m', 'deconv_basicsr.train', '-opt', 'bad.yml'], cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        message.replace('{cwd}', str(tmp_path)),
        '(OptionFileError, found at start-up: nothing was written; --debug shows the traceback)']
    assert sorted(p.name for p in tmp_path.iterdir()) == (['bad.yml'] if content is not None else [])


def test_option_file_error_shows_its_traceback_with_debug_and_in_testing(tmp_path):
    (tmp_path / 'bad.yml').write_text('')
    result = run_python(['-m', 'deconv_basicsr.test', '-opt', 'bad.yml'], cwd=tmp_path)
    assert result.returncode == 1 and result.stdout.startswith('Option file bad.yml: empty')
    assert 'Traceback' not in result.stdout
    result = run_python(['-m', 'deconv_basicsr.test', '-opt', 'bad.yml', '--debug'], cwd=tmp_path)
    assert result.returncode == 1 and 'Traceback' in result.stdout
    assert result.stdout.rstrip().endswith('OptionFileError: Option file bad.yml: empty (it holds no options)')
