"""Prepare DIV2K for BasicSR: training sub-images + LMDBs, and DIV2K100 (0801-0900) for testing.

    python scripts/prepare_div2k.py --download          # fetch, verify and extract the archives first
    python scripts/prepare_div2k.py                     # archives already extracted in datasets/DIV2K
    python scripts/prepare_div2k.py --download --skip-train   # only DIV2K100 (0801-0900) for testing

Reads datasets/DIV2K/DIV2K_{train,valid}_HR and, where present, DIV2K_{train,valid}_LR_bicubic/X{s}
(otherwise the LR images are generated with MATLAB-compatible bicubic). Writes
    datasets/DIV2K/DIV2K_train_HR_sub(.lmdb), DIV2K_train_LR_bicubic/X{s}_sub,
    datasets/DIV2K/DIV2K_train_LR_bicubic_X{s}_sub.lmdb,
    datasets/benchmark/DIV2K100/GTmod{s}, LRbicx{s}.
Every output is written to a hidden .partial folder and renamed into place when complete; existing outputs
are kept unless --overwrite.
"""
import argparse
import os
import sys

import deconv_basicsr.plugin  # noqa: F401  (BasicSR importable, the archs and the model registered)
from deconv_basicsr.prepare import download_div2k, prepare_div2k_train, prepare_div2k_valid
from deconv_basicsr.prepare.div2k import div2k_archives


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--root', default='datasets/DIV2K', help='DIV2K folder (default: %(default)s)')
    parser.add_argument('--valid-out', default='datasets/benchmark/DIV2K100',
                        help='DIV2K100 test set output (default: %(default)s)')
    parser.add_argument('--scales', type=int, nargs='+', default=[2, 3, 4], choices=[2, 3, 4])
    parser.add_argument('--download', action='store_true', help='download, verify and extract the archives')
    parser.add_argument('--keep-zip', action='store_true', help='keep the downloaded archives')
    parser.add_argument('--no-official-lr', action='store_true',
                        help='ignore (and do not download) the official LR images; generate them')
    parser.add_argument('--no-lmdb', action='store_true', help='write the sub-image folders only')
    parser.add_argument('--skip-train', action='store_true', help='do not prepare the training set')
    parser.add_argument('--skip-valid', action='store_true', help='do not prepare DIV2K100')
    parser.add_argument('--overwrite', action='store_true', help='rebuild existing outputs')
    parser.add_argument('--workers', type=int, default=min(4, os.cpu_count() or 1),
                        help='cropping processes (default: %(default)s)')
    args = parser.parse_args(argv)
    use_lr = not args.no_official_lr
    try:
        splits = [split for split, skip in (('train', args.skip_train), ('valid', args.skip_valid)) if not skip]
        if args.download:
            download_div2k(args.root, div2k_archives(args.scales, use_lr, splits), keep_zip=args.keep_zip)
        if not args.skip_train:
            prepare_div2k_train(args.root, args.scales, use_official_lr=use_lr, make_lmdb=not args.no_lmdb,
                                overwrite=args.overwrite, n_workers=args.workers)
        if not args.skip_valid:
            prepare_div2k_valid(args.root, args.valid_out, args.scales, use_official_lr=use_lr,
                                overwrite=args.overwrite)
    except (OSError, RuntimeError, ValueError) as err:
        sys.exit(f'error: {err}')
    print('DIV2K ready.')


if __name__ == '__main__':
    main()
