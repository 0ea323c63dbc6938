"""Sub-image extraction and LMDBs (the DIV2K code path) on tiny synthetic images."""
import os

import cv2
import lmdb
import numpy as np
import pytest

import deconv_basicsr.plugin  # noqa: F401  (BasicSR importable, the archs and the model registered)
from basicsr.data.paired_image_dataset import PairedImageDataset

import deconv_basicsr.prepare.subimages as subimages
from deconv_basicsr.prepare import (build_subimage_dataset, crop_positions, extract_subimages, read_meta_info,
                                 write_lmdb_from_folder)
from deconv_basicsr.prepare.atomic import partial_path

# 48x60 GT crops every 24 pixels; divisible by 2, 3 and 4 like BasicSR's 480/240.
CROP, STEP = 48, 24


def write_hr_images(folder, sizes=((84, 108), (72, 60))):
    """Smooth random HR images; returns {name: path}."""
    rng = np.random.default_rng(0)
    os.makedirs(folder, exist_ok=True)
    paths = {}
    for i, (h, w) in enumerate(sizes, 1):
        coarse = rng.uniform(0, 255, size=(h // 6, w // 6, 3)).astype(np.float32)
        img = np.clip(cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC), 0, 255).astype(np.uint8)
        paths[f'{i:04d}'] = os.path.join(folder, f'{i:04d}.png')
        cv2.imwrite(paths[f'{i:04d}'], img)
    return paths


def test_crop_positions_follow_basicsr():
    assert crop_positions(100, 48, 24) == [0, 24, 48, 52]  # plus one crop flush with the edge
    assert crop_positions(96, 48, 24) == [0, 24, 48]
    assert crop_positions(40, 48, 24) == []
    crops = extract_subimages(np.zeros((72, 96, 3)), 48, 24)
    assert [i for i, _ in crops] == list(range(1, 7)) and all(c.shape == (48, 48, 3) for _, c in crops)


def test_layout_names_meta_info_and_paired_dataset(tmp_path):
    hr = write_hr_images(tmp_path / 'hr')
    out = build_subimage_dataset(hr, str(tmp_path / 'DIV2K'), 'DIV2K_train', (2, 3), crop_size=CROP, step=STEP)
    root = tmp_path / 'DIV2K'
    assert sorted(os.listdir(root)) == ['DIV2K_train_HR_sub', 'DIV2K_train_HR_sub.lmdb', 'DIV2K_train_LR_bicubic',
                                        'DIV2K_train_LR_bicubic_X2_sub.lmdb', 'DIV2K_train_LR_bicubic_X3_sub.lmdb']
    assert sorted(os.listdir(root / 'DIV2K_train_LR_bicubic')) == ['X2_sub', 'X3_sub']
    # 0001: 84x108 -> 84x108 (mod 12), 3x4 crops (one flush per side); 0002: 72x60 -> 2x2 crops.
    names = sorted(os.listdir(root / 'DIV2K_train_HR_sub'))
    assert names[0] == '0001_s001.png' and len(names) == 12 + 4
    for s in (2, 3):
        assert sorted(os.listdir(root / 'DIV2K_train_LR_bicubic' / f'X{s}_sub')) == names
        lmdb_path = out[s][1]
        assert sorted(os.listdir(lmdb_path)) == ['data.mdb', 'lock.mdb', 'meta_info.txt']
        meta = read_meta_info(lmdb_path)
        assert [m[0] for m in meta] == [n[:-4] for n in names]
        assert all(shape == (CROP // s, CROP // s, 3) and level == 1 for _, shape, level in meta)
    with open(os.path.join(out['HR'][1], 'meta_info.txt')) as f:
        assert f.readline() == '0001_s001.png (48,48,3) 1\n'

    # The LMDBs are what BasicSR's PairedImageDataset reads, in training mode.
    opt = dict(phase='train', scale=3, gt_size=24, use_hflip=True, use_rot=True, io_backend=dict(type='lmdb'),
               dataroot_gt=out['HR'][1], dataroot_lq=out[3][1])
    dataset = PairedImageDataset(opt)
    assert len(dataset) == 16
    sample = dataset[5]
    assert sample['gt'].shape == (3, 24, 24) and sample['lq'].shape == (3, 8, 8)
    # The LR crop is the bicubic downscaling of the HR image at the same place.
    env = lmdb.open(out[2][1], readonly=True, lock=False)
    with env.begin() as txn:
        lr = cv2.imdecode(np.frombuffer(txn.get(b'0001_s002'), np.uint8), cv2.IMREAD_UNCHANGED)
    lr_full = cv2.imread(str(root / 'DIV2K_train_LR_bicubic' / 'X2_sub' / '0001_s002.png'))
    np.testing.assert_array_equal(lr, lr_full)


def test_official_lr_images_are_used(tmp_path):
    hr = write_hr_images(tmp_path / 'hr', sizes=((48, 48), ))
    lr_file = str(tmp_path / '0001x2.png')
    cv2.imwrite(lr_file, np.full((25, 25, 3), 7, np.uint8))  # official LR may be a little larger
    out = build_subimage_dataset(hr, str(tmp_path / 'out'), 'X', (2, ), lr_paths={2: {'0001': lr_file}},
                                 crop_size=CROP, step=STEP, make_lmdb=False)
    crop = cv2.imread(os.path.join(out[2][0], '0001_s001.png'))
    assert crop.shape == (24, 24, 3) and (crop == 7).all()
    assert out[2][1] is None


def test_existing_outputs_are_kept_unless_overwrite(tmp_path, capsys):
    hr = write_hr_images(tmp_path / 'hr')
    root = str(tmp_path / 'out')
    out = build_subimage_dataset(hr, root, 'X', (2, ), crop_size=CROP, step=STEP)
    data_mdb = os.path.join(out['HR'][1], 'data.mdb')
    stamp = os.stat(data_mdb).st_mtime_ns
    build_subimage_dataset(hr, root, 'X', (2, ), crop_size=CROP, step=STEP)
    assert os.stat(data_mdb).st_mtime_ns == stamp
    assert 'Keeping existing' in capsys.readouterr().out
    # A deleted sub-image folder is not rebuilt while its LMDB exists.
    import shutil
    shutil.rmtree(out['HR'][0])
    build_subimage_dataset(hr, root, 'X', (2, ), crop_size=CROP, step=STEP)
    assert not os.path.exists(out['HR'][0])
    build_subimage_dataset(hr, root, 'X', (2, ), crop_size=CROP, step=STEP, overwrite=True)
    assert os.path.isdir(out['HR'][0]) and os.stat(data_mdb).st_mtime_ns != stamp
    assert not [n for n in os.listdir(root) if n.startswith('.')]


def test_interrupted_run_leaves_nothing_that_looks_valid(tmp_path, monkeypatch):
    hr = write_hr_images(tmp_path / 'hr')
    root = tmp_path / 'out'
    calls = []
    real_write_png = subimages.write_png

    def failing_write_png(*args, **kwargs):
        calls.append(1)
        if len(calls) > 5:
            raise KeyboardInterrupt
        real_write_png(*args, **kwargs)

    monkeypatch.setattr(subimages, 'write_png', failing_write_png)
    with pytest.raises(KeyboardInterrupt):
        build_subimage_dataset(hr, str(root), 'X', (2, ), crop_size=CROP, step=STEP)
    assert not os.path.exists(root / 'X_HR_sub') and not os.path.exists(root / 'X_HR_sub.lmdb')
    assert not [n for n in os.listdir(root) if n.endswith('.partial')]
    monkeypatch.undo()

    # A work folder left by a killed run is neither used nor kept.
    os.makedirs(partial_path(str(root / 'X_HR_sub.lmdb')))
    out = build_subimage_dataset(hr, str(root), 'X', (2, ), crop_size=CROP, step=STEP)
    assert len(read_meta_info(out['HR'][1])) == 16
    assert not [n for n in os.listdir(root) if n.endswith('.partial')]


def test_lmdb_failure_keeps_the_previous_lmdb(tmp_path, monkeypatch):
    folder = tmp_path / 'imgs'
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f'a_s{i:03d}.png'), np.full((8, 8, 3), i, np.uint8))
    lmdb_path = str(tmp_path / 'a.lmdb')
    assert write_lmdb_from_folder(str(folder), lmdb_path) == 3
    with pytest.raises(FileExistsError):
        write_lmdb_from_folder(str(folder), lmdb_path)

    def broken_encode(*args, **kwargs):
        raise RuntimeError('disk full')

    monkeypatch.setattr(cv2, 'imencode', broken_encode)
    with pytest.raises(RuntimeError, match='disk full'):
        write_lmdb_from_folder(str(folder), lmdb_path, overwrite=True)
    assert len(read_meta_info(lmdb_path)) == 3
    assert sorted(os.listdir(tmp_path)) == ['a.lmdb', 'imgs']


def test_lmdb_map_grows_when_full(tmp_path, monkeypatch):
    folder = tmp_path / 'imgs'
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):  # noise does not compress: 4 x 768 kB
        cv2.imwrite(str(folder / f'n{i}.png'), rng.integers(0, 256, (512, 512, 3), dtype=np.uint8))
    import deconv_basicsr.prepare.lmdb_writer as lmdb_writer
    real_open = lmdb_writer.lmdb.open
    monkeypatch.setattr(lmdb_writer.lmdb, 'open', lambda path, map_size: real_open(path, map_size=1 << 20))
    write_lmdb_from_folder(str(folder), str(tmp_path / 'n.lmdb'), batch=2)
    assert [m[0] for m in read_meta_info(str(tmp_path / 'n.lmdb'))] == ['n0', 'n1', 'n2', 'n3']


def test_keys_with_dots_are_refused(tmp_path):
    with pytest.raises(ValueError, match='dots'):
        build_subimage_dataset({'a.b': 'x.png'}, str(tmp_path), 'X', (2, ))
