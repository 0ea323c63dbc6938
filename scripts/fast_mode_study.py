"""Convergence of FastDeconv's fast mode (``stats_period``) next to the exact mode, side by side.

    python scripts/fast_mode_study.py --data DATA        # 3 seeds x 300 steps, about 15 min on a CPU
    python scripts/fast_mode_study.py --data DATA --steps 40 --eval-every 20 --out /tmp/smoke

DATA holds T91/ (training) and Set5/ (validation, 128x128 centre crops) HR images, e.g. the shared datasets
folder. Writes OUT/curves.csv (one row per network, seed, variant and evaluation) and OUT/summary.md, and
prints the summary. What is trained: ``deconv_basicsr.experiments.fast_mode``; findings in docs/speed.md.
"""
import argparse
import os.path as osp

import torch

import deconv_basicsr.plugin  # noqa: F401  (BasicSR importable, the archs and the model registered)
from deconv_basicsr.experiments import fast_mode
from deconv_basicsr.experiments.inprocess import load_pairs


def main(argv=None):
    defaults = fast_mode.Settings()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--data', required=True, help='folder holding T91/ and Set5/ HR images')
    parser.add_argument('--out', default='fast_mode_study', help='output folder (default: %(default)s)')
    parser.add_argument('--networks', nargs='+', choices=sorted(fast_mode.NETWORKS), default=defaults.networks)
    parser.add_argument('--seeds', type=int, nargs='+', default=defaults.seeds)
    parser.add_argument('--steps', type=int, default=defaults.steps)
    parser.add_argument('--eval-every', type=int, default=defaults.eval_every)
    parser.add_argument('--batch', type=int, default=defaults.batch)
    parser.add_argument('--gt-size', type=int, default=defaults.gt_size, help='HR crop size')
    parser.add_argument('--lr', type=float, default=defaults.lr)
    parser.add_argument('--stats-period', type=int, default=defaults.stats_period)
    parser.add_argument('--threads', type=int, default=1,
                        help='CPU threads (default 1: on shared cores, more threads mostly wait for each other)')
    args = vars(parser.parse_args(argv))
    torch.set_num_threads(args.pop('threads'))
    data, out = args.pop('data'), args.pop('out')

    train_pairs = load_pairs(osp.join(data, 'T91'), fast_mode.SCALE)
    val_pairs = load_pairs(osp.join(data, 'Set5'), fast_mode.SCALE, crop=fast_mode.VAL_CROP)
    print(fast_mode.run(train_pairs, val_pairs, out, fast_mode.Settings(**args),
                        log=lambda line: print(line, flush=True)))


if __name__ == '__main__':
    main()
