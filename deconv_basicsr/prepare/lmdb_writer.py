"""LMDBs in BasicSR's layout, written atomically.

Layout (read by ``basicsr.data.data_util.paired_paths_from_lmdb`` and BasicSR's ``LmdbBackend``)::

    name.lmdb/
        data.mdb, lock.mdb
        meta_info.txt      # one line per image: "0001_s001.png (480,480,3) 1"

Keys are the file names without extension; they must not contain dots because BasicSR recovers them from
``meta_info.txt`` with ``line.split('.')[0]``. Values are PNG bytes at ``compress_level``.

Unlike ``basicsr.utils.lmdb_util.make_lmdb_from_imgs`` this never calls ``sys.exit``, grows the map when it
is full instead of trusting a first-image size estimate, verifies the entry count, and renames the folder
into place only when complete.
"""
import os
from os import path as osp

import cv2
import lmdb
from tqdm import tqdm

from deconv_basicsr.prepare.atomic import atomic_dir

__all__ = ['write_lmdb_from_folder', 'read_meta_info']


def _put_all(env, items):
    """Write ``items`` (key bytes, value bytes) in one transaction."""
    with env.begin(write=True) as txn:
        for key, value in items:
            txn.put(key, value)


def write_lmdb_from_folder(folder, lmdb_path, compress_level=1, overwrite=False, batch=1000, desc=None):
    """Pack every PNG of ``folder`` into an LMDB at ``lmdb_path``.

    Args:
        folder (str): Folder of ``.png`` images (e.g. ``DIV2K_train_HR_sub``).
        lmdb_path (str): Output path, ending with ``.lmdb``.
        compress_level (int): PNG compression level of the stored bytes. Default: 1 (BasicSR's).
        overwrite (bool): Replace an existing LMDB. Default: False (raise FileExistsError).
        batch (int): Images per transaction. Default: 1000.
        desc (str | None): Progress bar label. Default: the LMDB's name.

    Returns:
        int: Number of images written.
    """
    if not lmdb_path.endswith('.lmdb'):
        raise ValueError(f"An LMDB path must end with '.lmdb': {lmdb_path}")
    names = sorted(n for n in os.listdir(folder) if n.endswith('.png'))
    if not names:
        raise FileNotFoundError(f'No .png images in {folder}')
    for name in names:
        if '.' in name[:-len('.png')]:
            raise ValueError(f'LMDB keys must not contain dots (BasicSR splits on them): {name}')
    # PNG re-encoded at level 1 is rarely more than ~1.5x a level-3 file; the map grows if needed anyway.
    map_size = max(2 * sum(osp.getsize(osp.join(folder, n)) for n in names), 64 * 1024**2)

    with atomic_dir(lmdb_path, overwrite=overwrite) as work:
        env = lmdb.open(work, map_size=map_size)
        meta_lines, pending = [], []
        try:
            for i, name in enumerate(tqdm(names, desc=desc or osp.basename(lmdb_path), unit='img')):
                img = cv2.imread(osp.join(folder, name), cv2.IMREAD_UNCHANGED)
                if img is None:
                    raise OSError(f'Cannot read image: {osp.join(folder, name)}')
                ok, buf = cv2.imencode('.png', img, [cv2.IMWRITE_PNG_COMPRESSION, compress_level])
                if not ok:
                    raise OSError(f'Cannot encode image: {name}')
                h, w = img.shape[:2]
                c = 1 if img.ndim == 2 else img.shape[2]
                key = name[:-len('.png')]
                pending.append((key.encode('ascii'), buf.tobytes()))
                meta_lines.append(f'{key}.png ({h},{w},{c}) {compress_level}\n')
                if len(pending) == batch or i == len(names) - 1:
                    while True:
                        try:
                            _put_all(env, pending)
                            break
                        except lmdb.MapFullError:
                            map_size *= 2
                            env.set_mapsize(map_size)
                    pending = []
            with env.begin() as txn:
                entries = txn.stat()['entries']
        finally:
            env.close()
        if entries != len(names):
            raise RuntimeError(f'{lmdb_path}: wrote {entries} entries for {len(names)} images')
        # meta_info.txt last: BasicSR takes the key list from it.
        with open(osp.join(work, 'meta_info.txt'), 'w') as f:
            f.writelines(meta_lines)
    return len(names)


def read_meta_info(lmdb_path):
    """Parse ``meta_info.txt`` of an LMDB.

    Args:
        lmdb_path (str): LMDB folder.

    Returns:
        list[tuple[str, tuple[int, int, int], int]]: (key, (h, w, c), compress_level) per image.
    """
    entries = []
    with open(osp.join(lmdb_path, 'meta_info.txt')) as f:
        for line in f:
            name, shape, level = line.split()
            entries.append((name.split('.')[0], tuple(int(v) for v in shape.strip('()').split(',')), int(level)))
    return entries
