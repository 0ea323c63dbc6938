"""CPU time per batch of a paired training set, through PairedImageDataset and CachedPairedImageDataset.

    python scripts/benchmark_dataset.py --gt DATA/GTmod2 --lq DATA/LRbicx2 --gt-size 32 64

prints, for each patch size, the milliseconds of CPU a batch of training samples costs with each dataset, and
their ratio (deconv_basicsr.experiments.dataset_speed).
"""
import argparse

from deconv_basicsr.experiments.dataset_speed import DATASETS, cpu_per_batch


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--gt', required=True, help='folder (or LMDB) of HR training images')
    parser.add_argument('--lq', required=True, help='folder (or LMDB) of the matching LR images')
    parser.add_argument('--scale', type=int, default=2)
    parser.add_argument('--gt-size', type=int, nargs='+', default=[32], help='HR patch sizes')
    parser.add_argument('--batch-size', type=int, default=16)
    parser.add_argument('--batches', type=int, default=100, help='batches timed per round')
    parser.add_argument('--rounds', type=int, default=3)
    args = parser.parse_args()

    backend = 'lmdb' if args.gt.endswith('.lmdb') else 'disk'
    print(f"| HR patch | {' | '.join(DATASETS)} | ratio |\n|---|---|---|---|")
    for gt_size in args.gt_size:
        options = {'name': 'train', 'dataroot_gt': args.gt, 'dataroot_lq': args.lq, 'io_backend': {'type': backend},
                   'filename_tmpl': '{}', 'scale': args.scale, 'gt_size': gt_size, 'use_hflip': True,
                   'use_rot': True}
        ms = cpu_per_batch(options, args.batch_size, args.batches, args.rounds)
        plain, cached = (ms[name] for name in DATASETS)
        print(f'| {gt_size}×{gt_size} | {plain:.1f} ms | {cached:.1f} ms | {plain / cached:.1f} |', flush=True)


if __name__ == '__main__':
    main()
