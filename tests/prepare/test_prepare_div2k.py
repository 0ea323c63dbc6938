"""DIV2K preparation on a tiny stand-in of the official layout, and the download step offline."""
import hashlib
import os
import urllib.error
import zipfile

import cv2
import numpy as np
import pytest

import deconv_basicsr.plugin  # noqa: F401  (BasicSR importable, the archs and the model registered)
import deconv_basicsr.prepare.div2k as div2k
from deconv_basicsr.prepare import download_div2k, prepare_div2k_train, prepare_div2k_valid, read_meta_info


def write_png(path, shape, seed):
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    coarse = rng.uniform(0, 255, size=(shape[0] // 8, shape[1] // 8, 3)).astype(np.float32)
    img = np.clip(cv2.resize(coarse, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC), 0, 255)
    cv2.imwrite(path, img.astype(np.uint8))


@pytest.fixture
def div2k_root(tmp_path):
    """Two training and two validation HR images, official LR for x2 only (x3 is generated)."""
    root = tmp_path / 'DIV2K'
    for i, name in enumerate(['0001', '0002', '0801', '0802']):
        split = 'train' if name < '0801' else 'valid'
        write_png(str(root / f'DIV2K_{split}_HR' / f'{name}.png'), (492, 516), i)
        hr = cv2.imread(str(root / f'DIV2K_{split}_HR' / f'{name}.png'))
        write_png(str(root / f'DIV2K_{split}_LR_bicubic' / 'X2' / f'{name}x2.png'), (246, 258), 10 + i)
        del hr
    return root


def test_train_and_valid_layout(div2k_root, tmp_path):
    out = prepare_div2k_train(str(div2k_root), scales=(2, 3), n_workers=2)
    # 492x516 -> mod 12: 492x516; 480-crops every 240: 2 x 2 per image (one flush per side).
    meta = read_meta_info(str(div2k_root / 'DIV2K_train_HR_sub.lmdb'))
    assert [m[0] for m in meta] == [f'000{i}_s00{j}' for i in (1, 2) for j in (1, 2, 3, 4)]
    assert meta[0][1] == (480, 480, 3)
    assert read_meta_info(out[3][1])[0][1] == (160, 160, 3)
    assert os.path.basename(out[2][1]) == 'DIV2K_train_LR_bicubic_X2_sub.lmdb'
    assert os.path.isdir(div2k_root / 'DIV2K_train_LR_bicubic' / 'X3_sub')
    # x2 sub-images come from the official LR images (unrelated noise here), not from the HR images.
    official = cv2.imread(str(div2k_root / 'DIV2K_train_LR_bicubic' / 'X2' / '0001x2.png'))
    crop = cv2.imread(str(div2k_root / 'DIV2K_train_LR_bicubic' / 'X2_sub' / '0001_s001.png'))
    np.testing.assert_array_equal(crop, official[:240, :240])

    bench = tmp_path / 'benchmark' / 'DIV2K100'
    valid = prepare_div2k_valid(str(div2k_root), str(bench), scales=(2, 3))
    assert sorted(os.listdir(valid[2][0])) == ['0801.png', '0802.png']
    assert sorted(os.listdir(valid[3][1])) == ['0801.png', '0802.png']
    lr = cv2.imread(os.path.join(valid[2][1], '0801.png'))
    np.testing.assert_array_equal(lr, cv2.imread(str(div2k_root / 'DIV2K_valid_LR_bicubic/X2/0801x2.png')))


def test_missing_hr_names_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match='--download'):
        prepare_div2k_train(str(tmp_path), scales=(2, ))


def make_archive(tmp_path, folder, name):
    """A zip holding ``folder/0001.png``; returns (directory, size, sha256)."""
    src = tmp_path / 'src'
    write_png(str(src / folder / '0001.png'), (16, 16), 0)
    with zipfile.ZipFile(tmp_path / name, 'w') as zf:
        zf.write(src / folder / '0001.png', f'{folder}/0001.png')
    data = (tmp_path / name).read_bytes()
    return str(tmp_path), len(data), hashlib.sha256(data).hexdigest()


def test_download_verifies_and_extracts(tmp_path, monkeypatch):
    name = 'DIV2K_valid_LR_bicubic_X2.zip'
    server, size, sha256 = make_archive(tmp_path, 'DIV2K_valid_LR_bicubic/X2', name)
    monkeypatch.setitem(div2k.DIV2K_FILES, name, ('DIV2K_valid_LR_bicubic/X2', size, sha256))
    root = tmp_path / 'DIV2K'
    download_div2k(str(root), [name], base_url=f'file://{server}/')
    assert os.listdir(root / 'DIV2K_valid_LR_bicubic' / 'X2') == ['0001.png']
    assert sorted(os.listdir(root)) == ['DIV2K_valid_LR_bicubic']  # archive and work folders removed

    monkeypatch.setitem(div2k.DIV2K_FILES, name, ('DIV2K_valid_LR_bicubic/X2', size, '0' * 64))
    with pytest.raises(RuntimeError, match='corrupt'):
        download_div2k(str(tmp_path / 'other'), [name], base_url=f'file://{server}/')
    assert not os.path.exists(tmp_path / 'other' / 'DIV2K_valid_LR_bicubic')


def test_archive_lists():
    assert div2k.div2k_archives((2, ), lr=True, splits=('valid', )) == ['DIV2K_valid_HR.zip',
                                                                        'DIV2K_valid_LR_bicubic_X2.zip']
    assert len(div2k.div2k_archives()) == 8 and set(div2k.div2k_archives()) == set(div2k.DIV2K_FILES)
    assert div2k.div2k_archives((2, 3), lr=False) == ['DIV2K_train_HR.zip', 'DIV2K_valid_HR.zip']


def test_download_without_network_fails_clearly(tmp_path, monkeypatch):

    def offline(*args, **kwargs):
        raise urllib.error.URLError('[Errno -3] Temporary failure in name resolution')

    monkeypatch.setattr(div2k.urllib.request, 'urlopen', offline)
    with pytest.raises(RuntimeError, match='needs network access') as info:
        download_div2k(str(tmp_path), ['DIV2K_valid_HR.zip'])
    assert 'archives found there are verified and extracted' in str(info.value)
    assert os.listdir(tmp_path) == []
