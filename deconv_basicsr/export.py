"""Export a trained network for runtimes and tools outside PyTorch and this project.

    python -m deconv_basicsr.export -m experiments/NAME/models/net_g_latest.pth --onnx net.onnx
    deconv-basicsr-export -m net_g_latest.pth --spandrel net_spandrel.pth
    deconv-basicsr-export -m net_g_latest.pth --opt options/train_x.yml --onnx net.onnx

The checkpoint is read as by ``deconv_basicsr.upscale`` (-m, --opt) and its FastDeconv layers are fused into
plain convolutions. --onnx: the graph takes ``input`` (n, c, h, w), float32 RGB in [0, 1], with dynamic
batch, height and width, and gives ``output`` (n, c, h * scale, w * scale). --spandrel: an EDSR (or
DeconvEDSR) checkpoint in the layout of spandrel's RCAN, which computes the same (docs/inference.md). Both
need the ``export`` extra (``pip install -e ".[export]"``) only to be read or checked, ONNX also to be written.
"""
import argparse
import os
import sys

import torch

from deconv_basicsr.inference import input_channels, load_network, read_network_options
from deconv_basicsr.interchange import export_onnx, spandrel_state_dict


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-m', '--model', required=True, help='checkpoint (.pth), trained or fused')
    parser.add_argument('--opt', help="option file whose network_g describes the network (needed unless it is EDSR's)")
    parser.add_argument('--onnx', help='the ONNX file to write')
    parser.add_argument('--opset', type=int, help="ONNX opset version (default: the exporter's)")
    parser.add_argument('--spandrel', help="the .pth file to write in spandrel's RCAN layout (EDSR networks)")
    args = parser.parse_args(argv)
    if not (args.onnx or args.spandrel):
        parser.error('nothing to write: give --onnx and/or --spandrel')
    if args.onnx:
        try:
            import onnxscript  # noqa: F401  (torch's ONNX exporter needs it; fail before the slow part)
        except ImportError:
            sys.exit('error: ONNX export needs the export extra: pip install -e ".[export]"')
    try:
        network_g = read_network_options(args.opt) if args.opt else None
        net = load_network(args.model, network_g)
        if args.spandrel:
            torch.save(spandrel_state_dict(net), args.spandrel)
            print(f"{args.spandrel}: {os.path.getsize(args.spandrel) / 2**20:.2f} MB, spandrel's RCAN layout")
    except (OSError, ValueError) as err:
        sys.exit(f'error: {err}')
    if args.onnx:
        export_onnx(net, args.onnx, args.opset)
        print(f'{args.onnx}: {os.path.getsize(args.onnx) / 2**20:.2f} MB; input "input" (n, {input_channels(net)}, '
              'h, w), output "output", float32 RGB in [0, 1], dynamic n, h, w')


if __name__ == '__main__':
    main()
