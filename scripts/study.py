"""Train a baseline and its deconvolution twin side by side and plot their validation curves.

    python scripts/study.py --preset smoke                      # a minute or two: does it all run?
    python scripts/study.py --preset cpu --data ../shared/datasets --out study_cpu
    python scripts/study.py --preset paper --data datasets      # DIV2K LMDBs: a GPU job

Writes OUT/curves.csv, OUT/{PAIR}.png and OUT/summary.md. Rerunning the same command resumes an
interrupted study.
"""
import argparse

import deconv_basicsr  # noqa: F401  (registers the archs before BasicSR builds them)
from deconv_basicsr.study import DEFAULT_PAIRS, PAIRS, PRESETS, prepare_datasets, run_study


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--preset', required=True, choices=sorted(PRESETS),
                        help='; '.join(f'{k}: {v["description"]}' for k, v in PRESETS.items()))
    parser.add_argument('--data', help='folder with the HR image folders (T91/, Set5/, ...) or DIV2K/ LMDBs; '
                        'default: the embedded dataset')
    parser.add_argument('--out', help='output folder (default: study_PRESET)')
    parser.add_argument('--pairs', nargs='+', choices=sorted(PAIRS),
                        help=f"default: {' '.join(DEFAULT_PAIRS)}; srcnn_conv2: DeconvSRCNN with only conv2 "
                        'deconvolved, block 16, against the srcnn baseline')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    out = args.out or f'study_{args.preset}'
    datasets = prepare_datasets(args.preset, out, args.data)
    print(run_study(args.preset, datasets, out, args.pairs, args.seed))


if __name__ == '__main__':
    main()
