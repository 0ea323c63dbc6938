"""Probe one of the study's pairs step by step around the deconvolved arm's first fall at a high learning rate.

    python scripts/stability_probe.py --data DATA --record docs/study/stability      # ~30 min on 2 cores

Trains the study's pair of ``--family`` (default: SRCNN and DeconvSRCNN (conv2)) with the study's options
(``--lr``, seeds ``--seeds``) for their first ``--iters`` iterations under OUT, through BasicSR's training loop
with ``ProbedSRModel``, which records every step's statistics of ``--layer`` (condition number of its input
covariance, norm of the whitening matrix, of the folded kernel, of the gradient) and the total gradient norm.
Writes mechanism.csv, mechanism_val.csv, mechanism.png and mechanism.md into RECORD. Rerunning continues:
finished runs are skipped.
"""
import argparse

from deconv_basicsr.experiments.mechanism import run_probe


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--data', required=True, help='folder of HR image folders (T91/, Urban100/, ...)')
    parser.add_argument('--out', default='study_probe', help='output folder (default: %(default)s)')
    parser.add_argument('--record', required=True, help='folder for the record')
    parser.add_argument('--family', default='srcnn', choices=['srcnn', 'edsr'],
                        help="the study's pair (default: %(default)s)")
    parser.add_argument('--layer', default='conv2', help='the layer measured, a qualified module name '
                        '(default: %(default)s; for EDSR e.g. body.0.conv1)')
    parser.add_argument('--lr', type=float, default=1e-3, help='Adam learning rate (default: %(default)s)')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2], help='seeds (default: 0 1 2)')
    parser.add_argument('--iters', type=int, default=600, help='iterations (default: %(default)s)')
    parser.add_argument('--val-freq', type=int, default=20, help='validate every N iterations (default: 20)')
    parser.add_argument('--jobs', type=int, default=1, help='runs trained at once (default: %(default)s)')
    args = parser.parse_args(argv)
    print(run_probe(args.out, args.data, args.record, tuple(args.seeds), args.lr, args.iters, args.val_freq,
                    args.jobs, family=args.family, layer=args.layer))


if __name__ == '__main__':
    main()
