"""The study of the paper's two claims: each pair at several learning rates and lengths, over seeds.

    python scripts/study.py --preset smoke                                       # about a minute: does it run?
    python scripts/study.py --preset cpu --data DATA --record docs/study/cpu     # ~11 h on 2 cores

DATA is a folder of HR image folders (T91/, Urban100/, Set5/, Set14/, B100/). Trains under OUT
(experiments/, tb_logger/, results/); writes the record (curves.csv, tests.csv, summary.md, timing.json,
plots) into RECORD. Rerunning the same command continues an interrupted study: finished runs are skipped,
interrupted ones resume from their last state.
"""
import argparse
from pathlib import Path

import deconv_basicsr.plugin  # noqa: F401  (BasicSR importable, the archs and the model registered)
from deconv_basicsr.experiments.design import PRESETS
from deconv_basicsr.experiments.study import STAGES, run_study


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--preset', required=True, choices=sorted(PRESETS),
                        help='; '.join(f'{k}: {v.description}' for k, v in PRESETS.items()))
    parser.add_argument('--data', help='folder of HR image folders (T91/, Urban100/, Set5/, ...); default: the '
                        'embedded dataset')
    parser.add_argument('--out', help='output folder (default: study_PRESET)')
    parser.add_argument('--record', help='folder for the record (default: OUT)')
    parser.add_argument('--jobs', type=int, default=2, help='runs trained at once (default: %(default)s)')
    parser.add_argument('--threads', type=int, default=1, help='threads per run (default: %(default)s)')
    parser.add_argument('--stages', nargs='*', choices=STAGES, default=list(STAGES),
                        help='stages to run, in their fixed order (default: all; none: rewrite the record)')
    args = parser.parse_args(argv)
    options_dir = Path(__file__).resolve().parents[1] / 'options'
    print(run_study(args.preset, args.out or f'study_{args.preset}', options_dir, args.data, args.jobs,
                    args.threads, args.stages, args.record))


if __name__ == '__main__':
    main()
