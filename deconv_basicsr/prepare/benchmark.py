"""Benchmark test sets in the ``GTmod{s}`` / ``LRbicx{s}`` layout.

For each scale ``s``: ``GTmod{s}/{name}.png`` is the HR image cropped to a multiple of ``s`` and
``LRbicx{s}/{name}.png`` its MATLAB bicubic downscaling (or the official LR image, where given, cropped to
match). This is the protocol behind the published bicubic/SRCNN/EDSR numbers, and the layout BasicSR's
``PairedImageDataset`` reads in folder mode (same file name in both folders).
"""
import contextlib
from os import path as osp

from tqdm import tqdm

from basicsr.data.transforms import mod_crop

from deconv_basicsr.prepare.atomic import atomic_dir
from deconv_basicsr.prepare.image_io import list_images, read_image, write_png
from deconv_basicsr.imresize import bicubic_downscale

__all__ = ['benchmark_paths', 'prepare_benchmark']


def benchmark_paths(out_dir, scale):
    """(GT folder, LR folder) of one scale of a prepared benchmark."""
    return osp.join(out_dir, f'GTmod{scale}'), osp.join(out_dir, f'LRbicx{scale}')


def prepare_benchmark(hr, out_dir, scales=(2, 3, 4), lr_paths=None, overwrite=False, compress_level=3):
    """Write ``GTmod{s}`` and ``LRbicx{s}`` folders for every scale.

    A scale whose two folders both exist is kept unless ``overwrite``; folders are written atomically.

    Args:
        hr (str | dict[str, str]): Folder of HR images, or HR image path by output name. Single-channel
            images are read as 3-channel.
        out_dir (str): Output folder, e.g. ``datasets/benchmark/Set5``.
        scales (Sequence[int]): Scales. Default: (2, 3, 4).
        lr_paths (dict[int, dict[str, str]] | None): Official LR image path by scale and name, used instead
            of generating the LR image. Default: None.
        overwrite (bool): Rebuild existing scales. Default: False.
        compress_level (int): PNG compression level. Default: 3.

    Returns:
        dict[int, tuple[str, str]]: (GT folder, LR folder) by scale.
    """
    if isinstance(hr, str):
        hr = {osp.splitext(osp.basename(p))[0]: p for p in list_images(hr)}
    if not hr:
        raise FileNotFoundError(f'No HR images given for {out_dir}')
    lr_paths = lr_paths or {}
    outputs = {s: benchmark_paths(out_dir, s) for s in scales}
    todo = []
    for s, (gt_dir, lr_dir) in outputs.items():
        if not overwrite and osp.exists(gt_dir) and osp.exists(lr_dir):
            print(f'Keeping existing {gt_dir} and {lr_dir} (pass overwrite to rebuild them)')
        else:
            todo.append(s)
    if not todo:
        return outputs

    with contextlib.ExitStack() as stack:
        work = {
            s: tuple(stack.enter_context(atomic_dir(d, overwrite=True)) for d in outputs[s])
            for s in todo
        }
        desc = f"{osp.basename(osp.normpath(out_dir))} x{','.join(map(str, todo))}"
        for name, path in tqdm(sorted(hr.items()), desc=desc, unit='img'):
            img = read_image(path)
            for s, (gt_dir, lr_dir) in work.items():
                gt = mod_crop(img, s)
                lr_path = lr_paths.get(s, {}).get(name)
                if lr_path:
                    lr = read_image(lr_path)
                    h, w = gt.shape[0] // s, gt.shape[1] // s
                    if lr.shape[0] < h or lr.shape[1] < w:
                        raise ValueError(f'{lr_path} is smaller than {path} divided by {s}.')
                    lr = lr[:h, :w]
                else:
                    lr = bicubic_downscale(gt, s)
                write_png(osp.join(gt_dir, f'{name}.png'), gt, compress_level)
                write_png(osp.join(lr_dir, f'{name}.png'), lr, compress_level)
    return outputs
