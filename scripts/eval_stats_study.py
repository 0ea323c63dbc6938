"""Why DeconvSRCNN's validation curve swings: eval statistics measured on the same checkpoints.

    python scripts/eval_stats_study.py --data DATA                 # every curve, then the final analysis
    python scripts/eval_stats_study.py --data DATA --final-only    # the deconv arm, final analysis only
    python scripts/eval_stats_study.py --data DATA --estimates running recal avgD fixed "fixed avgD" \\
        --recal 32 --recal-fixed 32
    python scripts/eval_stats_study.py --data DATA --val-set Urban100 --val-images 10 --val-crop 192
    python scripts/eval_stats_study.py --summarize out_seed*.txt --compare "recal 128 avgD" "recal 16 avgD"

The fourth validates on the study's validation crops (docs/study.md). The last summarizes saved outputs of
several seeds: every estimate's mean over the seeds, and the differences asked for, paired by seed. DATA
holds T91/ (training) and the validation set's HR images (Set5/ unless --val-set), e.g. the shared datasets
folder. The defaults (400 iterations, validation every 25) take about an hour on 2 shared CPU cores.
Estimates and analysis: ``deconv_basicsr.experiments.eval_stats``; findings in docs/evaluation-statistics.md.
"""
import argparse
import os.path as osp
import time

import torch

import deconv_basicsr.plugin  # noqa: F401  (BasicSR importable, the archs and the model registered)
from deconv_basicsr.experiments import eval_stats
from deconv_basicsr.experiments.inprocess import load_pairs


def main(argv=None):
    defaults = eval_stats.Settings()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--data', help='folder holding T91/ and the validation set\'s HR images')
    parser.add_argument('--summarize', nargs='+', metavar='FILE', help='saved outputs (one per seed) to summarize')
    parser.add_argument('--compare', nargs=2, action='append', default=[], metavar=('A', 'B'),
                        help='with --summarize: estimate A minus estimate B, paired by seed (repeatable)')
    parser.add_argument('--val-set', default='Set5', help='validation images: a folder of DATA (default: %(default)s)')
    parser.add_argument('--val-images', type=int, help='validate on its first N images (default: all)')
    parser.add_argument('--val-crop', type=int, help='HR centre crop of each validation image (default: whole)')
    parser.add_argument('--iters', type=int, default=defaults.iters)
    parser.add_argument('--val-every', type=int, default=defaults.val_every)
    parser.add_argument('--batch-size', type=int, default=defaults.batch_size)
    parser.add_argument('--lr', type=float, default=defaults.lr, help="Adam's learning rate (default: %(default)s)")
    parser.add_argument('--gt-size', type=int, default=defaults.gt_size, help='HR crop size')
    parser.add_argument('--block', type=int, default=defaults.block, help="conv2's whitened channel block")
    parser.add_argument('--recal', type=int, nargs='+', default=defaults.recal,
                        help='batch counts of recalibration on the last training batches')
    parser.add_argument('--recal-fixed', type=int, nargs='+', default=defaults.recal_fixed,
                        help='batch counts of recalibration on the first training batches, the same set each time')
    parser.add_argument('--estimates', nargs='+', default=eval_stats.ESTIMATES, choices=eval_stats.ESTIMATES,
                        help='which curves to measure (each costs a pass over Set5 per validation)')
    parser.add_argument('--final-recal', type=int, nargs='+', default=defaults.final_recal,
                        help='batch counts of the final-checkpoint analysis')
    parser.add_argument('--sets', type=int, default=defaults.sets, help='disjoint batch sets per count there')
    parser.add_argument('--final-only', action='store_true',
                        help='train the deconv arm only (the same trajectory), without validations, then the '
                        'final analysis')
    parser.add_argument('--ema-decay', type=float, default=defaults.ema_decay, help='of the weight average (ema)')
    parser.add_argument('--seed', type=int, default=defaults.seed)
    parser.add_argument('--threads', type=int, default=2)
    args = vars(parser.parse_args(argv))
    summarize, compare = args.pop('summarize'), [tuple(pair) for pair in args.pop('compare')]
    if summarize:
        print(eval_stats.seeds_summary([eval_stats.read_output(path) for path in summarize], compare), end='')
        return
    if not args['data']:
        parser.error('--data is required (unless --summarize)')
    torch.set_num_threads(args.pop('threads'))
    data, val_set, val_images, val_crop = (args.pop(key) for key in ('data', 'val_set', 'val_images', 'val_crop'))

    start = time.time()
    train_pairs = load_pairs(osp.join(data, 'T91'), eval_stats.SCALE)
    val_pairs = load_pairs(osp.join(data, val_set), eval_stats.SCALE, val_crop, val_images)
    print(f'data: {len(train_pairs)} training and {len(val_pairs)} validation pairs', flush=True)
    eval_stats.run(train_pairs, val_pairs, eval_stats.Settings(**args), log=lambda line: print(line, flush=True))
    print(f'\ntotal {time.time() - start:.0f} s')


if __name__ == '__main__':
    main()
