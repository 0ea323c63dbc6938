"""Benchmark preparation: GTmod{s}/LRbicx{s} layout, grayscale images, the command line."""
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

import deconv_basicsr.plugin  # noqa: F401  (BasicSR importable, the archs and the model registered)
from basicsr.data.paired_image_dataset import PairedImageDataset

from deconv_basicsr.imresize import imresize
from deconv_basicsr.prepare import prepare_benchmark
from helpers import check_python, load_script

REPO = Path(__file__).resolve().parents[2]


def write_hr_folder(folder):
    """An RGB image of odd size and a single-channel one, like Set14's bridge.png."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    cv2.imwrite(str(folder / 'color.png'), rng.integers(0, 256, (25, 31, 3), dtype=np.uint8))
    cv2.imwrite(str(folder / 'gray.png'), rng.integers(0, 256, (24, 24), dtype=np.uint8))
    return folder


def test_layout_mod_crop_and_bicubic(tmp_path):
    hr = write_hr_folder(tmp_path / 'hr')
    out = prepare_benchmark(str(hr), str(tmp_path / 'bench'), scales=(2, 3))
    assert sorted(os.listdir(tmp_path / 'bench')) == ['GTmod2', 'GTmod3', 'LRbicx2', 'LRbicx3']
    gt = cv2.imread(os.path.join(out[3][0], 'color.png'), cv2.IMREAD_UNCHANGED)
    lr = cv2.imread(os.path.join(out[3][1], 'color.png'), cv2.IMREAD_UNCHANGED)
    assert gt.shape == (24, 30, 3) and lr.shape == (8, 10, 3)
    original = cv2.imread(str(hr / 'color.png'))
    np.testing.assert_array_equal(gt, original[:24, :30])
    np.testing.assert_array_equal(lr, imresize(gt, 1 / 3))
    gray = cv2.imread(os.path.join(out[2][0], 'gray.png'), cv2.IMREAD_UNCHANGED)
    assert gray.shape == (24, 24, 3)  # single-channel read as 3-channel
    dataset = PairedImageDataset(dict(phase='val', scale=2, io_backend=dict(type='disk'), dataroot_gt=out[2][0],
                                      dataroot_lq=out[2][1]))
    assert len(dataset) == 2 and dataset[1]['gt'].shape == (3, 24, 24)


def test_command_line(tmp_path, capsys):
    hr = write_hr_folder(tmp_path / 'hr')
    args = ['--hr', str(hr), '--out', str(tmp_path / 'b'), '--scales', '2', '4']
    check_python([str(REPO / 'scripts' / 'prepare_benchmark.py')] + args, cwd=tmp_path)
    assert sorted(os.listdir(tmp_path / 'b')) == ['GTmod2', 'GTmod4', 'LRbicx2', 'LRbicx4']
    script = load_script('prepare_benchmark')
    script.main(args)
    assert 'Keeping existing' in capsys.readouterr().out
    with pytest.raises(SystemExit, match='error: Image folder not found'):
        script.main(['--hr', str(tmp_path / 'missing'), '--out', str(tmp_path / 'c')])
