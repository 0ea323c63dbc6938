"""DIV2K: optional download, training sub-images/LMDBs and the DIV2K100 validation benchmark.

Expected layout under ``root`` (as the official zips extract)::

    DIV2K_train_HR/0001.png ... 0800.png
    DIV2K_valid_HR/0801.png ... 0900.png
    DIV2K_train_LR_bicubic/X{s}/0001x{s}.png     (optional; generated when absent)
    DIV2K_valid_LR_bicubic/X{s}/0801x{s}.png     (optional; generated when absent)
"""
import hashlib
import os
import shutil
import urllib.error
import urllib.request
import zipfile
from os import path as osp

from tqdm import tqdm

from deconv_basicsr.prepare.atomic import partial_path
from deconv_basicsr.prepare.benchmark import prepare_benchmark
from deconv_basicsr.prepare.image_io import list_images
from deconv_basicsr.prepare.subimages import SCALES, build_subimage_dataset

__all__ = ['DIV2K_URL', 'DIV2K_FILES', 'div2k_archives', 'download_div2k', 'prepare_div2k_train',
           'prepare_div2k_valid']

DIV2K_URL = 'https://data.vision.ee.ethz.ch/cvl/DIV2K/'
# Archive name: (folder it extracts to, size in bytes, sha256).
DIV2K_FILES = {
    'DIV2K_train_HR.zip':
    ('DIV2K_train_HR', 3530603713, '9d0b9c463f6e35b6c62cc6a930ee2224f670b34c1df841a57670f9acf0f6c335'),
    'DIV2K_valid_HR.zip':
    ('DIV2K_valid_HR', 448993893, '20dd31fd84d777bc1cf5d6b7654a3f569c0aec74458ae094122ad1d0489900fc'),
    'DIV2K_train_LR_bicubic_X2.zip':
    ('DIV2K_train_LR_bicubic/X2', 925390592, 'a53a424317575838dadce4bcd97cf7b744d6855f43740ed5f0245af3cf4bd850'),
    'DIV2K_train_LR_bicubic_X3.zip':
    ('DIV2K_train_LR_bicubic/X3', 427847282, 'ad5c8e5507e2765823d3c2c5bd0934842efcd487c5370604c224090898b3163a'),
    'DIV2K_train_LR_bicubic_X4.zip':
    ('DIV2K_train_LR_bicubic/X4', 246914039, 'f006b837f4eb52b82909aa01478e6d6d199eefce932179491d0c9dbb706dde3a'),
    'DIV2K_valid_LR_bicubic_X2.zip':
    ('DIV2K_valid_LR_bicubic/X2', 117763600, '60eed9875c697df51204aa579e2a699e1d5215095788a097ff54dd17e2664d57'),
    'DIV2K_valid_LR_bicubic_X3.zip':
    ('DIV2K_valid_LR_bicubic/X3', 54513392, '04b9a2ed3b4a0715d3924d3ae8514830c3328fac8d30512ce716d6f419e052a3'),
    'DIV2K_valid_LR_bicubic_X4.zip':
    ('DIV2K_valid_LR_bicubic/X4', 31505881, 'a50a5d1c4b88de4e8d300d8fb2b904c52fe93b2b298a4899697760d7cbb6d553'),
}


def div2k_archives(scales=SCALES, lr=True, splits=('train', 'valid')):
    """Names of the archives holding the HR images and, with ``lr``, the bicubic LR images of ``splits``."""
    names = [f'DIV2K_{split}_HR.zip' for split in splits]
    if lr:
        names += [f'DIV2K_{split}_LR_bicubic_X{s}.zip' for split in splits for s in scales]
    return names


def _sha256(path):
    """sha256 of a file, with a progress bar (the training HR archive is 3.5 GB)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f, tqdm(total=osp.getsize(path), unit='B', unit_scale=True,
                                     desc=f'Verify {osp.basename(path)}') as pbar:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
            pbar.update(len(chunk))
    return digest.hexdigest()


def _fetch(url, dest):
    """Download ``url`` to ``dest`` through ``dest.partial``, with a progress bar."""
    tmp = dest + '.partial'
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(tmp, 'wb') as f:
            total = int(response.headers.get('Content-Length') or 0) or None
            with tqdm(total=total, unit='B', unit_scale=True, desc=f'Download {osp.basename(dest)}') as pbar:
                for chunk in iter(lambda: response.read(1 << 20), b''):
                    f.write(chunk)
                    pbar.update(len(chunk))
    except (urllib.error.URLError, OSError) as err:
        if osp.exists(tmp):
            os.remove(tmp)
        raise RuntimeError(f'Cannot download {url}: {err}. This needs network access to {DIV2K_URL}; '
                           f'without it, download the archives elsewhere and put them into '
                           f'{osp.dirname(dest)}: archives found there are verified and extracted instead of '
                           f'downloaded, and extracted folders are used as they are.') from err
    os.replace(tmp, dest)


def download_div2k(root, archives, base_url=DIV2K_URL, keep_zip=False):
    """Download, verify (size and sha256) and extract DIV2K archives into ``root``.

    An archive whose folder already exists is skipped; an archive already in ``root`` is verified and
    used instead of downloading it again. A failed checksum deletes the file and raises.

    Args:
        root (str): DIV2K folder, e.g. ``datasets/DIV2K``.
        archives (Sequence[str]): Keys of ``DIV2K_FILES``.
        base_url (str): Where the archives are. Default: the official DIV2K site.
        keep_zip (bool): Keep the archives after extraction. Default: False.
    """
    os.makedirs(root, exist_ok=True)
    for name in archives:
        folder, size, sha256 = DIV2K_FILES[name]
        target = osp.join(root, folder)
        if osp.isdir(target):
            print(f'Keeping existing {target}')
            continue
        zip_path = osp.join(root, name)
        if not osp.exists(zip_path):
            _fetch(base_url + name, zip_path)
        actual_size = osp.getsize(zip_path)
        if actual_size != size or _sha256(zip_path) != sha256:
            os.remove(zip_path)
            raise RuntimeError(f'{zip_path} is corrupt (size {actual_size}, expected {size}, or sha256 '
                               f'mismatch); it was deleted, run again to download it anew.')
        _extract(zip_path, root, folder)
        if not keep_zip:
            os.remove(zip_path)


def _extract(zip_path, root, folder):
    """Extract the archive's ``folder`` (e.g. ``DIV2K_train_LR_bicubic/X2``) into ``root`` atomically."""
    work = partial_path(osp.join(root, folder.replace('/', '_')) + '.unzip')
    if osp.exists(work):
        shutil.rmtree(work)
    with zipfile.ZipFile(zip_path) as zf:
        for member in tqdm(zf.infolist(), desc=f'Extract {osp.basename(zip_path)}', unit='file'):
            zf.extract(member, work)
    src = osp.join(work, folder)
    if not osp.isdir(src):
        shutil.rmtree(work)
        raise RuntimeError(f'{zip_path} does not contain the folder {folder}.')
    os.makedirs(osp.dirname(osp.join(root, folder)), exist_ok=True)
    os.rename(src, osp.join(root, folder))
    shutil.rmtree(work)


def _split_images(root, split, scales, use_lr=True):
    """HR paths by name and official LR paths by scale and name for ``split`` ('train' or 'valid')."""
    hr_dir = osp.join(root, f'DIV2K_{split}_HR')
    if not osp.isdir(hr_dir):
        raise FileNotFoundError(f'{hr_dir} not found: extract DIV2K_{split}_HR.zip into {root} or pass '
                                f'--download.')
    hr = {osp.splitext(osp.basename(p))[0]: p for p in list_images(hr_dir)}
    lr = {}
    for s in scales:
        lr_dir = osp.join(root, f'DIV2K_{split}_LR_bicubic', f'X{s}')
        if use_lr and osp.isdir(lr_dir):
            found = {osp.splitext(osp.basename(p))[0]: p for p in list_images(lr_dir)}
            # Official LR names carry the scale: 0001x2.png.
            lr[s] = {name: found[f'{name}x{s}'] for name in hr if f'{name}x{s}' in found}
            print(f'X{s}: {len(lr[s])} official LR images, {len(hr) - len(lr[s])} to generate')
        else:
            print(f'X{s}: no {lr_dir}; generating LR images with MATLAB bicubic')
    return hr, lr


def prepare_div2k_train(root, scales=SCALES, use_official_lr=True, make_lmdb=True, overwrite=False,
                        n_workers=1):
    """Training set: ``DIV2K_train_HR_sub(.lmdb)`` and ``DIV2K_train_LR_bicubic_X{s}_sub(.lmdb)``.

    Sub-images of 480x480 every 240 pixels (BasicSR's DIV2K recipe).

    Args:
        root (str): DIV2K folder.
        scales (Sequence[int]): Scales. Default: (2, 3, 4).
        use_official_lr (bool): Use ``DIV2K_train_LR_bicubic`` where present. Default: True.
        make_lmdb (bool): Also write LMDBs. Default: True.
        overwrite (bool): Rebuild existing outputs. Default: False.
        n_workers (int): Cropping processes. Default: 1.

    Returns:
        dict: Output paths, see ``build_subimage_dataset``.
    """
    hr, lr = _split_images(root, 'train', scales, use_official_lr)
    return build_subimage_dataset(hr, root, 'DIV2K_train', scales, lr_paths=lr, crop_size=480, step=240,
                                  make_lmdb=make_lmdb, overwrite=overwrite, n_workers=n_workers)


def prepare_div2k_valid(root, out_dir, scales=SCALES, use_official_lr=True, overwrite=False):
    """Test set DIV2K100 (images 0801-0900) in the benchmark layout ``GTmod{s}`` / ``LRbicx{s}``.

    Args:
        root (str): DIV2K folder.
        out_dir (str): Output folder, e.g. ``datasets/benchmark/DIV2K100``.
        scales (Sequence[int]): Scales. Default: (2, 3, 4).
        use_official_lr (bool): Use ``DIV2K_valid_LR_bicubic`` where present. Default: True.
        overwrite (bool): Rebuild existing outputs. Default: False.

    Returns:
        dict[int, tuple[str, str]]: (GT folder, LR folder) by scale.
    """
    hr, lr = _split_images(root, 'valid', scales, use_official_lr)
    return prepare_benchmark(hr, out_dir, scales, lr_paths=lr, overwrite=overwrite)
