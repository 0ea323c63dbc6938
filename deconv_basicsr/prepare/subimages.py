"""BasicSR's DIV2K sub-image layout and its LMDBs, for any set of HR images.

Follows BasicSR's ``scripts/data_preparation/extract_subimages.py``: HR crops of ``crop_size`` every
``step`` pixels plus one crop flush with the bottom/right edge (when more than ``thresh_size`` pixels would
be left over), the LR crops at the same places divided by the scale, named ``{name}_s{NNN}.png``. Layout
under ``root`` for a ``prefix`` such as ``DIV2K_train``::

    {prefix}_HR_sub/                     {prefix}_HR_sub.lmdb
    {prefix}_LR_bicubic/X{s}_sub/        {prefix}_LR_bicubic_X{s}_sub.lmdb

The LR images are the official ones where given, else the MATLAB bicubic downscaling of the HR image.
"""
import contextlib
import multiprocessing
from os import path as osp

from tqdm import tqdm

from basicsr.data.transforms import mod_crop

from deconv_basicsr.prepare.atomic import atomic_dir
from deconv_basicsr.prepare.image_io import read_image, write_png
from deconv_basicsr.imresize import bicubic_downscale
from deconv_basicsr.prepare.lmdb_writer import write_lmdb_from_folder

__all__ = ['SCALES', 'HR_MOD', 'crop_positions', 'extract_subimages', 'subimage_paths', 'build_subimage_dataset']

SCALES = (2, 3, 4)
# HR images are cropped to a multiple of lcm(2, 3, 4) so that one HR_sub set pairs with every scale's LR.
HR_MOD = 12


def crop_positions(length, crop_size, step, thresh_size=0):
    """Top (or left) coordinates of the crops along one side, as BasicSR's ``extract_subimages``.

    Args:
        length (int): Side length of the image.
        crop_size (int): Crop side.
        step (int): Stride between crops.
        thresh_size (int): Add a crop flush with the far edge when more than this many pixels are left.

    Returns:
        list[int]: Crop coordinates; empty when the image is smaller than ``crop_size``.
    """
    positions = list(range(0, length - crop_size + 1, step))
    if positions and length - (positions[-1] + crop_size) > thresh_size:
        positions.append(length - crop_size)
    return positions


def extract_subimages(img, crop_size, step, thresh_size=0):
    """Crop an image into overlapping sub-images, row by row.

    Args:
        img (ndarray): (h, w, c) image.
        crop_size (int): Crop side.
        step (int): Stride between crops.
        thresh_size (int): See ``crop_positions``.

    Returns:
        list[tuple[int, ndarray]]: (1-based index, crop) pairs.
    """
    h, w = img.shape[:2]
    crops = []
    for y in crop_positions(h, crop_size, step, thresh_size):
        for x in crop_positions(w, crop_size, step, thresh_size):
            crops.append((len(crops) + 1, img[y:y + crop_size, x:x + crop_size, ...]))
    return crops


def subimage_paths(root, prefix, scales=SCALES):
    """Output paths of ``build_subimage_dataset``.

    Args:
        root (str): Dataset folder.
        prefix (str): Name prefix, e.g. ``DIV2K_train``.
        scales (Sequence[int]): Scales.

    Returns:
        dict: ``{'HR' or s: (sub-image folder, lmdb path)}``.
    """
    paths = {'HR': (osp.join(root, f'{prefix}_HR_sub'), osp.join(root, f'{prefix}_HR_sub.lmdb'))}
    for s in scales:
        paths[s] = (osp.join(root, f'{prefix}_LR_bicubic', f'X{s}_sub'),
                    osp.join(root, f'{prefix}_LR_bicubic_X{s}_sub.lmdb'))
    return paths


def _crop_image(task):
    """Worker: write the sub-images of one HR image (and its LR images) into the work folders."""
    name, hr_path, lr_paths, outputs, crop_size, step, thresh_size, compress_level = task
    hr = mod_crop(read_image(hr_path), HR_MOD)
    count = 0
    for key, folder in outputs.items():
        if key == 'HR':
            img, s = hr, 1
        else:
            s = key
            if lr_paths.get(s):
                lr = read_image(lr_paths[s])
                h, w = hr.shape[0] // s, hr.shape[1] // s
                if lr.shape[0] < h or lr.shape[1] < w:
                    raise ValueError(f'{lr_paths[s]} is {lr.shape[1]}x{lr.shape[0]}, smaller than the '
                                     f'HR image {hr_path} divided by {s}.')
                img = lr[:h, :w]
            else:
                img = bicubic_downscale(hr, s)
        for idx, crop in extract_subimages(img, crop_size // s, step // s, thresh_size // s):
            write_png(osp.join(folder, f'{name}_s{idx:03d}.png'), crop, compress_level)
            count += 1
    return count


def build_subimage_dataset(hr_paths,
                           root,
                           prefix,
                           scales=SCALES,
                           lr_paths=None,
                           crop_size=480,
                           step=240,
                           thresh_size=0,
                           compress_level=3,
                           make_lmdb=True,
                           overwrite=False,
                           n_workers=1):
    """Crop HR/LR images into BasicSR's sub-image folders and pack them into LMDBs.

    Existing outputs are kept unless ``overwrite``; a sub-image folder whose LMDB already exists is not
    rebuilt (so it may be deleted to save disk). Every folder and LMDB is written atomically.

    Args:
        hr_paths (dict[str, str]): HR image path by image name (the name, without dots, starts every key).
        root (str): Output folder.
        prefix (str): Output name prefix, e.g. ``DIV2K_train``.
        scales (Sequence[int]): Scales among 2, 3, 4. Default: (2, 3, 4).
        lr_paths (dict[int, dict[str, str]] | None): Official LR image path by scale and image name; scales
            or names missing here are generated with MATLAB bicubic. Default: None.
        crop_size (int): HR crop side, divisible by every scale. Default: 480.
        step (int): HR crop stride, divisible by every scale. Default: 240.
        thresh_size (int): See ``crop_positions``. Default: 0.
        compress_level (int): PNG level of the sub-image files. Default: 3.
        make_lmdb (bool): Also write the LMDBs. Default: True.
        overwrite (bool): Rebuild existing outputs. Default: False.
        n_workers (int): Processes that crop images. Default: 1.

    Returns:
        dict: ``{'HR' or s: (sub-image folder, lmdb path or None)}`` as in ``subimage_paths``.
    """
    lr_paths = lr_paths or {}
    for s in scales:
        if s not in SCALES:
            raise ValueError(f'Unsupported scale {s}; choose among {SCALES}.')
        if crop_size % s or step % s or thresh_size % s:
            raise ValueError(f'crop_size, step and thresh_size must be divisible by the scale {s}.')
    for name in hr_paths:
        if '.' in name:
            raise ValueError(f'Image names must not contain dots (LMDB keys): {name}')
    paths = subimage_paths(root, prefix, scales)

    todo = {}
    for key, (folder, lmdb_path) in paths.items():
        lmdb_kept = make_lmdb and osp.exists(lmdb_path) and not overwrite
        if overwrite or not (osp.exists(folder) or lmdb_kept):
            todo[key] = folder
        elif osp.exists(folder):
            print(f'Keeping existing {folder} (pass overwrite to rebuild it)')
    if todo:
        _crop_all(prefix, hr_paths, lr_paths, todo, crop_size, step, thresh_size, compress_level, overwrite, n_workers)
    if make_lmdb:
        for key, (folder, lmdb_path) in paths.items():
            if overwrite or not osp.exists(lmdb_path):
                write_lmdb_from_folder(folder, lmdb_path, overwrite=overwrite)
            else:
                print(f'Keeping existing {lmdb_path} (pass overwrite to rebuild it)')
    return {k: (f, lp if make_lmdb else None) for k, (f, lp) in paths.items()}


def _crop_all(prefix, hr_paths, lr_paths, folders, crop_size, step, thresh_size, compress_level, overwrite,
              n_workers):
    """Write the sub-image folders ``folders`` ({'HR' or s: path}) atomically, all in one pass."""
    with contextlib.ExitStack() as stack:
        work = {k: stack.enter_context(atomic_dir(f, overwrite=overwrite)) for k, f in folders.items()}
        tasks = [(name, hr_paths[name], {s: lr_paths.get(s, {}).get(name)
                                         for s in work if s != 'HR'}, work, crop_size, step, thresh_size,
                  compress_level) for name in sorted(hr_paths)]
        desc = f"Crop {prefix} ({', '.join(k if k == 'HR' else f'X{k}' for k in folders)})"
        with tqdm(total=len(tasks), desc=desc, unit='img') as pbar:
            if n_workers > 1:
                with multiprocessing.Pool(n_workers) as pool:
                    for _ in pool.imap_unordered(_crop_image, tasks):
                        pbar.update(1)
            else:
                for task in tasks:
                    _crop_image(task)
                    pbar.update(1)
