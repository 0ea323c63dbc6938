"""The embedded dataset (scikit-image's photographs) and the quickstart option file on it."""
import os
from pathlib import Path

import pytest

import deconv_basicsr.plugin  # noqa: F401  (BasicSR importable, the archs and the model registered)
from basicsr.data.paired_image_dataset import PairedImageDataset

from deconv_basicsr.prepare import read_meta_info
from deconv_basicsr.prepare.embedded import EMBEDDED_TRAIN, EMBEDDED_VALID
from helpers import check_python, load_script

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope='module')
def workdir(tmp_path_factory):
    """A working folder whose ``datasets/Embedded`` holds the x2 embedded dataset, built by the script."""
    work = tmp_path_factory.mktemp('embedded')
    script = load_script('prepare_embedded')
    script.main(['--root', str(work / 'datasets' / 'Embedded'), '--scales', '2'])
    return work


def test_layout(workdir):
    root = workdir / 'datasets' / 'Embedded'
    assert sorted(os.listdir(root)) == ['Embedded_train_HR_sub', 'Embedded_train_HR_sub.lmdb',
                                        'Embedded_train_LR_bicubic', 'Embedded_train_LR_bicubic_X2_sub.lmdb', 'valid']
    keys = [k for k, _, _ in read_meta_info(str(root / 'Embedded_train_HR_sub.lmdb'))]
    assert {k.rsplit('_s', 1)[0] for k in keys} == {os.path.splitext(f)[0] for f in EMBEDDED_TRAIN}
    assert sorted(os.listdir(root / 'valid' / 'LRbicx2')) == sorted(os.path.splitext(f)[0] + '.png'
                                                                     for f in EMBEDDED_VALID)
    dataset = PairedImageDataset(
        dict(phase='train', scale=2, gt_size=64, use_hflip=True, use_rot=True, io_backend=dict(type='lmdb'),
             dataroot_gt=str(root / 'Embedded_train_HR_sub.lmdb'),
             dataroot_lq=str(root / 'Embedded_train_LR_bicubic_X2_sub.lmdb')))
    assert len(dataset) == len(keys) > 300
    assert dataset[0]['lq'].shape == (3, 32, 32)


def test_quickstart_trains_validates_and_saves(workdir):
    """The quickstart option file, cut to 2 iterations, through the package's train entry point."""
    check_python([
        '-m', 'deconv_basicsr.train', '-opt',
        str(REPO / 'options' / 'quickstart_deconv_edsr_x2.yml'), '--force_yml', 'train:total_iter=2',
        'val:val_freq=1000', 'logger:print_freq=1', 'logger:save_checkpoint_freq=2'
    ], cwd=workdir)
    experiment = workdir / 'experiments' / 'quickstart_deconv_edsr_x2'
    assert (experiment / 'models' / 'net_g_latest.pth').is_file()
    log = next(experiment.glob('train_*.log')).read_text()
    assert 'Validation Embedded' in log and '# psnr:' in log
