"""Rerun the README's quickstart and append its figures to the record the README quotes.

    python scripts/quickstart_record.py [--threads N] [--record docs/quickstart/runs.json]

Runs both quickstart commands in a fresh folder under --work (default: a temporary folder, removed
afterwards), then appends the final validation PSNR, the seconds of each command and the machine (CPU,
torch's CPU capability, torch, threads, load average) to the record (``deconv_basicsr.experiments.quickstart``).
"""
import argparse
import json
import shutil
import tempfile
from os import path as osp

from deconv_basicsr.experiments import quickstart

PROJECT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--threads', type=int,
                        help="OMP_NUM_THREADS of the run (default: torch's, one per core, as the README's command)")
    parser.add_argument('--record', default=osp.join(PROJECT, 'docs', 'quickstart', 'runs.json'),
                        help='record file, a JSON list (default: docs/quickstart/runs.json)')
    parser.add_argument('--work', help='run in this new folder and keep it (default: a temporary one)')
    args = parser.parse_args(argv)
    if args.work:
        entry = quickstart.run_quickstart(PROJECT, args.work, args.threads)
    else:
        parent = tempfile.mkdtemp(prefix='quickstart_')
        try:
            entry = quickstart.run_quickstart(PROJECT, osp.join(parent, 'run'), args.threads)
        finally:
            shutil.rmtree(parent, ignore_errors=True)
    quickstart.append_record(args.record, entry)
    print(json.dumps(entry, indent=1))


if __name__ == '__main__':
    main()
