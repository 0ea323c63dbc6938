"""Reading and writing the images of the preparation scripts."""
import os
from os import path as osp

import cv2

__all__ = ['IMG_EXTENSIONS', 'list_images', 'read_image', 'write_png']

IMG_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp', '.ppm')


def list_images(folder):
    """Sorted paths of the image files directly inside ``folder``.

    Args:
        folder (str): Folder to list.

    Returns:
        list[str]: Full paths, sorted by file name.
    """
    if not osp.isdir(folder):
        raise FileNotFoundError(f'Image folder not found: {folder}')
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith(IMG_EXTENSIONS))
    return [osp.join(folder, n) for n in names]


def read_image(path):
    """Read an image as a 3-channel BGR uint8 array.

    Single-channel images (Set14's ``bridge.png``) are replicated to three channels and an alpha channel
    is dropped, so every image goes through the colour pipeline the benchmarks assume.

    Args:
        path (str): Image file.

    Returns:
        ndarray: (h, w, 3) uint8 BGR image.
    """
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise OSError(f'Cannot read image: {path}')
    return img


def write_png(path, img, compress_level=3):
    """Write a PNG, raising instead of silently failing like ``cv2.imwrite``.

    Args:
        path (str): Output ``.png`` path; its folder must exist.
        img (ndarray): uint8 image.
        compress_level (int): zlib level 0-9. Default: 3 (BasicSR's sub-image default).
    """
    if not cv2.imwrite(path, img, [cv2.IMWRITE_PNG_COMPRESSION, compress_level]):
        raise OSError(f'Cannot write image: {path}')
