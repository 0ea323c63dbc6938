"""Collect BasicSR test results into the paper's Table 1: rows dataset x scale, columns Bicubic / baseline /
Deconv / difference, written as Markdown and CSV.

    python scripts/make_table.py                      # EDSR: results/{bicubic,edsr,edsr_deconv}_x{2,3}
    python scripts/make_table.py --model srcnn        # SRCNN vs DeconvSRCNN
    python scripts/make_table.py --metric ssim --scales 2 3 4

Reads results/<name>/test_<name>_*.log as written by `python -m deconv_basicsr.test -opt options/test_*.yml`.
"""
import argparse
import os
import sys
from os import path as osp

from deconv_basicsr.experiments.tables import collect_table, table_to_csv, table_to_markdown

MODELS = {'edsr': ('EDSR', 'DeconvEDSR'), 'srcnn': ('SRCNN', 'DeconvSRCNN')}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--results', default='results', help="BasicSR's results folder (default: %(default)s)")
    parser.add_argument('--model', default='edsr', choices=sorted(MODELS), help='baseline (default: %(default)s)')
    parser.add_argument('--scales', type=int, nargs='+', default=[2, 3])
    parser.add_argument('--datasets', nargs='+', default=['Set5', 'Set14', 'B100', 'Urban100', 'DIV2K100'])
    parser.add_argument('--metric', default='psnr', help='metric name in the test options (default: %(default)s)')
    parser.add_argument('--out', help='output path without extension (default: <results>/table1_<model>_<metric>)')
    args = parser.parse_args(argv)

    baseline, deconv = MODELS[args.model]
    methods = {
        'Bicubic': 'bicubic_x{scale}',
        baseline: f'{args.model}_x{{scale}}',
        deconv: f'{args.model}_deconv_x{{scale}}',
    }
    header, rows = collect_table(args.results, methods, args.scales, args.datasets, args.metric)
    if not rows:
        sys.exit(f"error: no {args.metric} results under {args.results}/ for "
                 f"{', '.join(t.format(scale='<s>') for t in methods.values())}; run the test option files first.")
    digits = 3 if args.metric == 'psnr' else 4
    markdown = table_to_markdown(header, rows, digits)
    out = args.out or osp.join(args.results, f'table1_{args.model}_{args.metric}')
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    with open(out + '.md', 'w') as f:
        f.write(f'{args.metric.upper()} on the Y channel, border = scale\n\n' + markdown)
    with open(out + '.csv', 'w') as f:
        f.write(table_to_csv(header, rows))
    print(markdown)
    print(f'Written {out}.md and {out}.csv')


if __name__ == '__main__':
    main()
