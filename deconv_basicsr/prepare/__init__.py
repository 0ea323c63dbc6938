"""Offline dataset preparation.

Reusable pieces behind ``scripts/prepare_*.py``: BasicSR's sub-image layout, atomically written LMDBs,
benchmark ``GTmod``/``LRbicx`` folders, DIV2K download and preparation, and the embedded dataset built from
scikit-image's photographs. LR images come from ``deconv_basicsr.imresize`` (MATLAB-compatible bicubic).
"""
from deconv_basicsr import compat

compat.apply()  # BasicSR importable first

from deconv_basicsr.prepare.atomic import atomic_dir  # noqa: E402
from deconv_basicsr.prepare.benchmark import benchmark_paths, prepare_benchmark
from deconv_basicsr.prepare.div2k import download_div2k, prepare_div2k_train, prepare_div2k_valid
from deconv_basicsr.prepare.embedded import prepare_embedded
from deconv_basicsr.prepare.image_io import list_images, read_image, write_png
from deconv_basicsr.prepare.lmdb_writer import read_meta_info, write_lmdb_from_folder
from deconv_basicsr.prepare.subimages import build_subimage_dataset, crop_positions, extract_subimages

__all__ = [
    'atomic_dir', 'benchmark_paths', 'prepare_benchmark', 'download_div2k', 'prepare_div2k_train',
    'prepare_div2k_valid', 'prepare_embedded', 'list_images', 'read_image', 'write_png', 'read_meta_info',
    'write_lmdb_from_folder', 'build_subimage_dataset', 'crop_positions', 'extract_subimages'
]
