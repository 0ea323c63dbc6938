"""Dataset preparation.

Reusable pieces behind ``scripts/prepare_*.py``: MATLAB-compatible bicubic resizing, BasicSR's sub-image
layout, atomically written LMDBs, benchmark ``GTmod``/``LRbicx`` folders, DIV2K download and preparation, and
the embedded dataset built from scikit-image's photographs.
"""
from deconv_basicsr.data.atomic import atomic_dir
from deconv_basicsr.data.benchmark import benchmark_paths, prepare_benchmark
from deconv_basicsr.data.div2k import download_div2k, prepare_div2k_train, prepare_div2k_valid
from deconv_basicsr.data.embedded import prepare_embedded
from deconv_basicsr.data.image_io import list_images, read_image, write_png
from deconv_basicsr.data.imresize import bicubic_downscale, imresize, resize_matrix
from deconv_basicsr.data.lmdb_writer import read_meta_info, write_lmdb_from_folder
from deconv_basicsr.data.subimages import build_subimage_dataset, crop_positions, extract_subimages

__all__ = [
    'atomic_dir', 'benchmark_paths', 'prepare_benchmark', 'download_div2k', 'prepare_div2k_train',
    'prepare_div2k_valid', 'prepare_embedded', 'list_images', 'read_image', 'write_png', 'bicubic_downscale',
    'imresize', 'resize_matrix', 'read_meta_info', 'write_lmdb_from_folder', 'build_subimage_dataset',
    'crop_positions', 'extract_subimages'
]
