"""Inference speed of DeconvEDSR with its FastDeconv layers fused into plain convolutions, and without.

    python scripts/benchmark_inference.py --json docs/speed/inference_fused.json

Both networks of ``--options`` (default: the quickstart's and the x2 training recipe's) run in eval mode on
one random LR image of ``--size``, unfused (every FastDeconv whitens with its running statistics) and
fused (``deconv_basicsr.layers.fuse_deconv``, what ``deconv_basicsr.upscale`` runs), timed in turn within
every round so both see the same machine load; medians over rounds. The FastDeconv layers first gather
running statistics from the image (three forwards in train mode), so that the fused network's output,
compared with the unfused one's, checks a real fold.
"""
import argparse
import copy
import json
import statistics

import torch
import deconv_basicsr.plugin  # noqa: F401  (BasicSR importable, the archs registered)
from basicsr.archs import build_network
from deconv_basicsr.experiments.timing import environment, side_by_side
from deconv_basicsr.inference import read_network_options
from deconv_basicsr.layers import fuse_deconv

OPTIONS = ['options/quickstart_deconv_edsr_x2.yml', 'options/train_edsr_deconv_x2.yml']


def measure(network_g, size, rounds):
    """Median seconds per forward of the unfused and the fused network, and their largest difference."""
    torch.manual_seed(0)
    unfused = build_network(dict(network_g)).requires_grad_(False)
    x = torch.rand(1, network_g['num_in_ch'], size, size)
    with torch.no_grad():
        for _ in range(3):  # running statistics of real features, so that the check below means something
            unfused(x)
        unfused.eval()
        fused = fuse_deconv(copy.deepcopy(unfused))
        difference = float((fused(x) - unfused(x)).abs().max())
        times = side_by_side({'unfused': lambda: unfused(x), 'fused': lambda: fused(x)}, rounds)
    ratios = [u / f for u, f in zip(times['unfused'], times['fused'])]  # same round, same load
    return {**{f'{name}_s': round(statistics.median(values), 4) for name, values in times.items()},
            'speedup': round(statistics.median(ratios), 3),
            'speedup_range': [round(min(ratios), 3), round(max(ratios), 3)],
            'max_abs_difference': difference,
            **{f'{name}_state_mb': round(state_bytes(net) / 2**20, 2)
               for name, net in (('unfused', unfused), ('fused', fused))}}


def state_bytes(net):
    """Bytes of the network's state_dict (its checkpoint's size, near enough)."""
    return sum(t.numel() * t.element_size() for t in net.state_dict().values())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--options', nargs='+', default=OPTIONS, help='option files whose network_g is timed')
    parser.add_argument('--size', type=int, default=128, help='side of the LR image (default: %(default)s)')
    parser.add_argument('--rounds', type=int, default=7, help='timed rounds (default: %(default)s)')
    parser.add_argument('--threads', type=int, default=2, help='CPU threads (default: %(default)s)')
    parser.add_argument('--json', help='write the figures, the settings and the machine to this file')
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    record = {'settings': {'size': args.size, 'rounds': args.rounds, 'batch': 1},
              'environment': environment(torch.device('cpu')), 'results': {}}
    for path in args.options:
        network_g = read_network_options(path)
        record['results'][path] = result = measure(network_g, args.size, args.rounds)
        print(f"{path}: unfused {result['unfused_s']:.3f} s, fused {result['fused_s']:.3f} s per image "
              f"({result['speedup']:.2f}x, rounds {result['speedup_range']}), outputs differ by "
              f"{result['max_abs_difference']:.1e}; "
              f"state {result['unfused_state_mb']} -> {result['fused_state_mb']} MB")
    record['environment']['load_average_after'] = environment(torch.device('cpu'))['load_average']
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as f:
            json.dump(record, f, indent=1)


if __name__ == '__main__':
    main()
