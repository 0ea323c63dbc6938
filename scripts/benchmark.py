"""Speed and memory of network deconvolution next to the plain networks, and of its inverse square roots.

    python scripts/benchmark.py                    # CPU on 2 threads, then CUDA when present
    python scripts/benchmark.py --json bench.json  # also write the figures and the machine to a file
    python scripts/benchmark.py --isqrt-only       # the inverse square root section only
    python scripts/benchmark.py --quick            # smoke run: batch 2, 2 rounds

What is measured and how: ``deconv_basicsr.experiments.benchmark``; figures in docs/speed.md.
"""
import argparse
import dataclasses
import json

import torch

import deconv_basicsr.plugin  # noqa: F401  (BasicSR importable, the archs and the model registered)
from deconv_basicsr.experiments import benchmark


def main(argv=None):
    defaults = benchmark.Settings()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--device', choices=['all', 'cpu', 'cuda'], default='all',
                        help='all: CPU, then CUDA when present (default)')
    parser.add_argument('--threads', type=int, default=2, help='CPU threads (default: %(default)s)')
    parser.add_argument('--networks', nargs='+', choices=sorted(benchmark.NETWORKS), default=defaults.networks)
    parser.add_argument('--batch', type=int, default=defaults.batch)
    parser.add_argument('--patch', type=int, default=defaults.patch, help='LR patch size (default: %(default)s)')
    parser.add_argument('--rounds', type=int, default=defaults.rounds, help='rounds of training steps')
    parser.add_argument('--eval-rounds', type=int, default=defaults.eval_rounds, help='rounds of evaluation forwards')
    parser.add_argument('--stats-period', type=int, default=defaults.stats_period, help="the fast variant's")
    parser.add_argument('--no-memory', action='store_true', help='skip the peak memory measurement')
    parser.add_argument('--isqrt-only', action='store_true', help='the inverse square root section only')
    parser.add_argument('--isqrt-dims', type=int, nargs='*', default=defaults.isqrt_dims,
                        help='covariance dimensions (default: %(default)s; none: skip the section)')
    parser.add_argument('--isqrt-iters', type=int, nargs='+', default=defaults.isqrt_iters)
    parser.add_argument('--isqrt-rounds', type=int, default=defaults.isqrt_rounds)
    parser.add_argument('--quick', action='store_true', help='batch 2, 2 rounds of everything: does it all run?')
    parser.add_argument('--json', help='write the figures, the settings and the machine to this file')
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.rounds, args.eval_rounds, args.isqrt_rounds = 2, 2, 2, 2
    settings = benchmark.Settings(
        networks=() if args.isqrt_only else tuple(args.networks), batch=args.batch, patch=args.patch,
        rounds=args.rounds, eval_rounds=args.eval_rounds, stats_period=args.stats_period, memory=not args.no_memory,
        isqrt_dims=tuple(args.isqrt_dims), isqrt_iters=tuple(args.isqrt_iters), isqrt_rounds=args.isqrt_rounds)

    torch.set_num_threads(args.threads)
    devices = [torch.device('cpu')] if args.device in ('all', 'cpu') else []
    if args.device in ('all', 'cuda') and torch.cuda.is_available():
        devices.append(torch.device('cuda'))
    elif args.device == 'cuda':
        parser.error('CUDA is not available')
    record = {'settings': dataclasses.asdict(settings), 'results': [benchmark.run(d, settings) for d in devices]}
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(record, f, indent=1)


if __name__ == '__main__':
    main()
