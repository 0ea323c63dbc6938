"""Screen changes that could keep a deconvolved network stable at high learning rates (docs/stability.md).

    python scripts/stability_search.py --data DATA --record docs/study/stability/screen    # ~3.5 h on 2 cores

Trains the study's pair of ``--family`` (default: SRCNN and DeconvSRCNN (conv2)) and each candidate
(``--candidates``, default: all; each changes the deconvolved arm) with the study's options at each ``--lr``,
seeds ``--seeds``, under OUT, then writes curves.csv (a ``candidate`` column), summary.md (figures with
intervals) and a plot per rate into RECORD. Rerunning continues: finished runs are skipped. ``--list`` prints
the candidates.
"""
import argparse

from deconv_basicsr.experiments.screen import CANDIDATES, SCREENED, run_screen


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--data', help='folder of HR image folders (T91/, Urban100/, ...); default: the embedded '
                        'dataset, a code-path check whose figures decide nothing')
    parser.add_argument('--out', default='study_screen', help='folder of the runs (default: %(default)s)')
    parser.add_argument('--record', help='folder of the record (default: OUT/record)')
    parser.add_argument('--candidates', nargs='+', default=list(SCREENED), choices=list(CANDIDATES),
                        metavar='NAME', help="candidates (default: the screen's, %(default)s; baseline and deconv "
                        'are always trained)')
    parser.add_argument('--family', default='srcnn', choices=['srcnn', 'edsr'],
                        help="the study's pair the candidates change (default: %(default)s)")
    parser.add_argument('--lr', type=float, nargs='+', default=[1e-3], help='Adam learning rates (default: 1e-3)')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2], help='seeds (default: 0 1 2)')
    parser.add_argument('--iters', type=int, help="iterations (default: the study's length at each rate)")
    parser.add_argument('--preset', default='cpu', choices=['cpu', 'smoke'],
                        help="the study preset whose options the runs take (default: %(default)s; smoke: tiny "
                        "networks, a few iterations)")
    parser.add_argument('--study-record', metavar='CSV',
                        help="the study's curves.csv on the same --data (e.g. docs/study/cpu/curves.csv): the runs "
                        "of the baseline and the unchanged arm it holds whole are taken from it, not trained")
    parser.add_argument('--jobs', type=int, default=2, help='runs trained at once (default: %(default)s)')
    parser.add_argument('--threads', type=int, default=1, help='threads per run (default: %(default)s)')
    parser.add_argument('--record-only', action='store_true',
                        help='train nothing: write the record of the runs finished so far (a partial one)')
    parser.add_argument('--list', action='store_true', help='print the candidates and exit')
    args = parser.parse_args(argv)
    if args.list:
        for name, (what, _, overrides) in CANDIDATES.items():
            print(f'{name:12} {what} ({overrides or "the study options"})')
        return
    print(run_screen(args.out, args.record or f'{args.out}/record', args.candidates, args.seeds, args.lr,
                     args.iters, args.data, args.family, args.preset, args.jobs, args.threads, args.study_record,
                     train=not args.record_only))


if __name__ == '__main__':
    main()
