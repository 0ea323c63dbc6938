"""Turn a checkpoint of a deconvolution network into one of the plain network, for deployment.

    python scripts/convert_checkpoint.py experiments/EDSR_deconv_x2/models/net_g_300000.pth edsr_x2_plain.pth

Every FastDeconv in the checkpoint (found by its ``running_deconv`` entry) becomes the convolution it computes
in eval mode: its kernel and bias fold in the running statistics, and the d x d statistics are dropped (they
make a DeconvEDSR checkpoint about 8x larger than EDSR's). The result has the plain network's keys, so it
loads strictly into e.g. BasicSR's EDSR (``network_g: type: EDSR``) and gives the same output as the
deconvolution network in eval mode. BasicSR checkpoints keep networks under ``params`` and ``params_ema``;
each one is converted. No network is built, so any arch works.
"""
import argparse
import os
import os.path as osp
import sys

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from deconv_basicsr.layers.fuse import fuse_checkpoint  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('input', help='checkpoint of a network with FastDeconv layers (.pth)')
    parser.add_argument('output', help='where to write the plain checkpoint')
    args = parser.parse_args()
    checkpoint = torch.load(args.input, map_location='cpu', weights_only=True)
    converted, fused = fuse_checkpoint(checkpoint)
    if not fused:
        parser.error(f'{args.input} holds no FastDeconv layer (no running_deconv entry)')
    torch.save(converted, args.output)
    for key, layers in fused.items():
        print(f'{key or "state_dict"}: {layers} FastDeconv layers fused')
    size_in, size_out = os.path.getsize(args.input), os.path.getsize(args.output)
    print(f'{args.output}: {size_out / 2**20:.1f} MB (was {size_in / 2**20:.1f} MB)')


if __name__ == '__main__':
    main()
