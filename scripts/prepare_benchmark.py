"""Turn a folder of HR images into a benchmark test set: GTmod{s}/ and LRbicx{s}/ per scale.

    python scripts/prepare_benchmark.py --hr path/to/Set5 --set Set5 --out datasets/benchmark/Set5 --scales 2 3 4

GTmod{s}: HR cropped to a multiple of s; LRbicx{s}: its MATLAB bicubic downscaling. Single-channel images
are read as 3-channel. Existing scales are kept unless --overwrite. --set checks the folder first against
the sha256 of that known set (shipped with the package; docs/data.md) and stops, naming every file that
differs, is unknown or is missing, unless --no-check.
"""
import argparse
import sys

import deconv_basicsr.plugin  # noqa: F401  (BasicSR importable, the archs and the model registered)
from deconv_basicsr.prepare import prepare_benchmark
from deconv_basicsr.prepare.checksums import check_set, read_checksums


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--hr', required=True, help='folder of HR images')
    parser.add_argument('--out', required=True, help='output folder, e.g. datasets/benchmark/Set5')
    parser.add_argument('--scales', type=int, nargs='+', default=[2, 3, 4])
    parser.add_argument('--overwrite', action='store_true', help='rebuild existing GTmod/LRbicx folders')
    parser.add_argument('--set', choices=sorted(read_checksums()), help='the known set --hr holds: check it first')
    parser.add_argument('--no-check', action='store_true', help='with --set: report differences, prepare anyway')
    args = parser.parse_args(argv)
    try:
        if args.set:
            problems = check_set(args.hr, args.set)
            for problem in problems:
                print(f'{"warning" if args.no_check else "error"}: {problem}', file=sys.stderr)
            if problems and not args.no_check:
                sys.exit(f'error: {args.hr} is not {args.set} as published ({len(problems)} file(s) above); '
                         'pass --no-check to prepare it anyway')
            if not problems:
                print(f'{args.hr}: every image matches {args.set}')
        outputs = prepare_benchmark(args.hr, args.out, args.scales, overwrite=args.overwrite)
    except (OSError, ValueError) as err:
        sys.exit(f'error: {err}')
    for s, (gt_dir, lr_dir) in outputs.items():
        print(f'x{s}: {gt_dir} {lr_dir}')


if __name__ == '__main__':
    main()
