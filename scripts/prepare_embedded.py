"""Build the embedded dataset from photographs bundled with scikit-image (no download).

    python scripts/prepare_embedded.py

Writes datasets/Embedded/: training sub-images and LMDBs (the DIV2K code path) and the validation images
in the benchmark layout (valid/GTmod{s}, valid/LRbicx{s}). Existing outputs are kept unless --overwrite.
"""
import argparse
import sys

import deconv_basicsr.plugin  # noqa: F401  (BasicSR importable, the archs and the model registered)
from deconv_basicsr.prepare import prepare_embedded


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--root', default='datasets/Embedded', help='output folder (default: %(default)s)')
    parser.add_argument('--scales', type=int, nargs='+', default=[2, 3, 4])
    parser.add_argument('--overwrite', action='store_true', help='rebuild existing outputs')
    parser.add_argument('--workers', type=int, default=1, help='cropping processes (default: %(default)s)')
    args = parser.parse_args(argv)
    try:
        prepare_embedded(args.root, args.scales, overwrite=args.overwrite, n_workers=args.workers)
    except (OSError, ValueError) as err:
        sys.exit(f'error: {err}')
    print(f'Embedded dataset ready in {args.root}')


if __name__ == '__main__':
    main()
