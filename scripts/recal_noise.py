"""How much of the study's validation curves is the weights, and how much the recalibrated statistics.

    python scripts/recal_noise.py --out study_cpu --runs dsrcnn_c2_lr0.001_it2000_s0 dsrcnn_c2_lr0.001_it2000_s1 \\
        --record docs/study/cpu --csv recal_noise.csv

Every checkpoint of each finished study run under OUT is recalibrated on disjoint sets of fresh training
batches for each batch count and validated (``deconv_basicsr.experiments.recal_noise``). Writes the rows to
CSV after each run and prints a summary, beside the recorded curve when --record holds the study's
curves.csv. Rerunning continues: runs the CSV holds are not probed again (--summary-only: only the summary).
"""
import argparse
import os.path as osp

import torch

import deconv_basicsr.plugin  # noqa: F401  (BasicSR importable, the archs and the model registered)
from deconv_basicsr.experiments import curves as cv
from deconv_basicsr.experiments import recal_noise


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', default='study_cpu', help='the study folder (default: %(default)s)')
    parser.add_argument('--runs', nargs='+', help='run names (folders of OUT/experiments)')
    parser.add_argument('--counts', type=int, nargs='+', default=[16, 128], help='batches per recalibration')
    parser.add_argument('--sets', type=int, default=3, help='disjoint batch sets per count')
    parser.add_argument('--seed', type=int, default=1000, help='of the fresh batches')
    parser.add_argument('--record', help="the study's record folder (its curves.csv: the recorded curves)")
    parser.add_argument('--csv', required=True, help='rows written here (read with --summary-only)')
    parser.add_argument('--summary-only', action='store_true')
    parser.add_argument('--threads', type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.summary_only:
        rows = recal_noise.read_csv(args.csv)
    else:
        if not args.runs:
            parser.error('--runs is required unless --summary-only')
        # The rows are written after every run; runs the CSV already holds are not probed again.
        rows = recal_noise.read_csv(args.csv) if osp.isfile(args.csv) else []
        for name in args.runs:
            if any(row[0] == name for row in rows):
                continue
            rows += recal_noise.probe_run(args.out, name, args.counts, args.sets, args.seed,
                                          log=lambda line: print(line, flush=True))
            recal_noise.write_csv(args.csv, rows)
    records = cv.read_csv(osp.join(args.record, 'curves.csv')) if args.record else None
    names = sorted({row[0] for row in rows})
    print(recal_noise.summary(rows, records, {name: recal_noise.recorded_statistics(args.out, name) for name in names}))


if __name__ == '__main__':
    main()
