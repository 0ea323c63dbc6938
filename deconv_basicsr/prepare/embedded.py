"""The embedded dataset: photographs bundled with scikit-image, prepared like DIV2K.

Needs no download. Training images go through the DIV2K sub-image/LMDB code path (smaller crops, since the
photos are 300-1400 pixels wide); validation images through the benchmark layout. Layout under ``root``
(default ``datasets/Embedded``)::

    Embedded_train_HR_sub(.lmdb)                Embedded_train_LR_bicubic/X{s}_sub
    Embedded_train_LR_bicubic_X{s}_sub.lmdb     valid/GTmod{s}, valid/LRbicx{s}
"""
from os import path as osp

from deconv_basicsr.prepare.benchmark import prepare_benchmark
from deconv_basicsr.prepare.subimages import SCALES, build_subimage_dataset

__all__ = ['EMBEDDED_TRAIN', 'EMBEDDED_VALID', 'embedded_image_paths', 'prepare_embedded']

# Photographs only (no drawings, binary masks or synthetic images); grayscale ones are read as 3-channel.
EMBEDDED_TRAIN = ('brick.png', 'coffee.png', 'coins.png', 'grass.png', 'gravel.png', 'hubble_deep_field.jpg',
                  'ihc.png', 'moon.png', 'motorcycle_left.png', 'motorcycle_right.png', 'retina.jpg',
                  'rocket.jpg')
EMBEDDED_VALID = ('astronaut.png', 'camera.png', 'chelsea.png')
EMBEDDED_CROP_SIZE = 192
EMBEDDED_STEP = 96


def embedded_image_paths(files):
    """Paths of scikit-image's bundled images by name (file name without extension).

    Args:
        files (Sequence[str]): File names in ``skimage.data.data_dir``.

    Returns:
        dict[str, str]: Path by name.
    """
    import skimage.data

    paths = {osp.splitext(f)[0]: osp.join(skimage.data.data_dir, f) for f in files}
    missing = [p for p in paths.values() if not osp.isfile(p)]
    if missing:
        raise FileNotFoundError(f'scikit-image does not ship {missing}; the embedded dataset needs '
                                f'scikit-image >= 0.19 installed from a wheel.')
    return paths


def prepare_embedded(root='datasets/Embedded', scales=SCALES, overwrite=False, n_workers=1):
    """Build the embedded dataset's training LMDBs and validation benchmark.

    Args:
        root (str): Output folder. Default: ``datasets/Embedded``.
        scales (Sequence[int]): Scales. Default: (2, 3, 4).
        overwrite (bool): Rebuild existing outputs. Default: False.
        n_workers (int): Cropping processes. Default: 1.

    Returns:
        dict: ``{'train': build_subimage_dataset result, 'valid': prepare_benchmark result}``.
    """
    train = build_subimage_dataset(embedded_image_paths(EMBEDDED_TRAIN), root, 'Embedded_train', scales,
                                   crop_size=EMBEDDED_CROP_SIZE, step=EMBEDDED_STEP, overwrite=overwrite,
                                   n_workers=n_workers)
    valid = prepare_benchmark(embedded_image_paths(EMBEDDED_VALID), osp.join(root, 'valid'), scales,
                              overwrite=overwrite)
    return {'train': train, 'valid': valid}
