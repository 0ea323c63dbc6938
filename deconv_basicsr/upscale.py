"""Upscale your images with a trained network.

    python -m deconv_basicsr.upscale -i photo.png -o upscaled/ -m experiments/NAME/models/net_g_latest.pth
    deconv-basicsr-upscale -i photos/ -o upscaled/ -m net_g_latest.pth --opt options/train_x.yml --tile 256

-i is an image or a folder of images, -o the output folder (``<name>.png`` per image, 8- or 16-bit as the
input). -m is a BasicSR checkpoint, trained or fused (``params_ema`` is used where present, else
``params``); an EDSR or DeconvEDSR checkpoint needs nothing else, other networks the option file they were
trained with (--opt, its network_g). FastDeconv layers are fused into plain convolutions first. Gray images
and alpha channels are kept (alpha is upscaled by bicubic interpolation). An image that cannot be read or
upscaled is reported on one line and skipped; the command then exits with status 1.
"""
import argparse
import os
import sys
from os import path as osp

import cv2
import torch
from tqdm import tqdm

from deconv_basicsr.inference import PRECISIONS, TILE_PAD, load_network, read_network_options, upscale_image
from deconv_basicsr.prepare.image_io import list_images


def pick_device(name):
    """'auto' is CUDA when there is one, else the CPU."""
    if name == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    if name == 'cuda' and not torch.cuda.is_available():
        raise ValueError('--device cuda: no CUDA device is available')
    return torch.device(name)


def output_path(path, out_dir):
    """``out_dir/<name>.png`` for the image ``path``."""
    return osp.join(out_dir, osp.splitext(osp.basename(path))[0] + '.png')


def upscale_file(net, path, target, tile, tile_pad):
    """Upscale the image file ``path`` into ``target``."""
    if not osp.isfile(path):
        raise OSError('no such file')
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise OSError('cannot read the image')
    if osp.exists(target) and osp.samefile(target, path):
        raise OSError('the output would overwrite the input; choose another output folder')
    if not cv2.imwrite(target, upscale_image(net, img, tile, tile_pad)):
        raise OSError(f'cannot write {target}')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-i', '--input', required=True, help='image file or folder of images')
    parser.add_argument('-o', '--output', required=True, help='output folder')
    parser.add_argument('-m', '--model', required=True, help='checkpoint (.pth), trained or fused')
    parser.add_argument('--opt', help="option file whose network_g describes the network (needed unless it is EDSR's)")
    parser.add_argument('--tile', type=int, default=0,
                        help='tile side in input pixels, to bound memory (default 0: whole images)')
    parser.add_argument('--tile-pad', type=int, default=TILE_PAD,
                        help='context pixels around each tile (default %(default)s: exact for EDSR up to 18 blocks; '
                        'docs/inference.md)')
    parser.add_argument('--device', choices=['auto', 'cpu', 'cuda'], default='auto')
    parser.add_argument('--precision', choices=list(PRECISIONS), default='fp32')
    args = parser.parse_args(argv)
    if args.tile < 0 or args.tile_pad < 0:
        parser.error('--tile and --tile-pad must be >= 0')

    try:
        paths = list_images(args.input) if osp.isdir(args.input) else [args.input]
        if not paths:
            raise FileNotFoundError(f'{args.input}: no images in this folder')
        network_g = read_network_options(args.opt) if args.opt else None
        net = load_network(args.model, network_g, pick_device(args.device), PRECISIONS[args.precision])
        os.makedirs(args.output, exist_ok=True)
    except (OSError, ValueError) as err:
        sys.exit(f'error: {err}')

    failed, written = 0, set()
    for path in tqdm(paths, unit='img'):
        target = output_path(path, args.output)
        try:
            if target in written:  # photo.jpg after photo.png
                raise OSError(f'{target} is already the output of another image of the same name')
            upscale_file(net, path, target, args.tile, args.tile_pad)
            written.add(target)
        except (OSError, ValueError, torch.OutOfMemoryError) as err:
            failed += 1
            tqdm.write(f'error: {path}: {" ".join(str(err).split())}', file=sys.stderr)
    if failed:
        sys.exit(f'{failed} of {len(paths)} images failed')
    print(f'{len(paths)} image(s) written to {args.output}')


if __name__ == '__main__':
    main()
