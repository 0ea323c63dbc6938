"""The training data order: a seed varies the order of the samples, and only the seed does.

Both arms of a study pair train with the same seed: their batches must be identical whatever else the arms
do with the random generators (building a different network draws different numbers).
"""
import random

import pytest
import torch

import deconv_basicsr.plugin  # noqa: F401  (BasicSR importable, the archs and the model registered)
from helpers import write_image_pairs


def train_loader(gt_dir, lq_dir, seed, enlarge=3):
    from basicsr.data import build_dataloader as basicsr_build_dataloader
    from basicsr.data import build_dataset
    from basicsr.data.data_sampler import EnlargedSampler

    from deconv_basicsr.training.data_order import build_dataloader
    from deconv_basicsr.training.resumable import ResumePosition

    opt = dict(name='order', type='PairedImageDataset', dataroot_gt=gt_dir, dataroot_lq=lq_dir,
               io_backend=dict(type='disk'), gt_size=16, use_hflip=True, use_rot=True, phase='train', scale=2,
               num_worker_per_gpu=0, batch_size_per_gpu=2, dataset_enlarge_ratio=enlarge, prefetch_mode=None)
    dataset = build_dataset(opt)
    sampler = EnlargedSampler(dataset, 1, 0, enlarge)
    return build_dataloader(basicsr_build_dataloader, ResumePosition(), dataset, opt, num_gpu=0, dist=False,
                            sampler=sampler, seed=seed), sampler


def epoch_indices(loader, sampler, epoch):
    sampler.set_epoch(epoch)
    return [index for index, _ in loader.sampler]


def epoch_batches(loader, sampler, epoch):
    sampler.set_epoch(epoch)
    return [(batch['lq'], batch['gt']) for batch in loader]


@pytest.fixture
def pairs(tmp_path):
    return write_image_pairs(tmp_path / 'data', num_images=8)


def test_seed_zero_keeps_basicsr_order(pairs):
    loader, sampler = train_loader(*pairs, seed=0)
    for epoch in (0, 3):
        sampler.set_epoch(epoch)
        assert epoch_indices(loader, sampler, epoch) == list(sampler)


def test_seeds_see_different_orders(pairs):
    orders = {}
    for seed in (0, 1, 2):
        loader, sampler = train_loader(*pairs, seed=seed)
        orders[seed] = [epoch_indices(loader, sampler, epoch) for epoch in (0, 1)]
    for seed, order in orders.items():
        # Each epoch is a permutation of the enlarged dataset: every image `enlarge` times.
        assert all(sorted(indices) == sorted(list(range(8)) * 3) for indices in order)
        assert order[0] != order[1]
    assert orders[0] != orders[1] and orders[1] != orders[2] and orders[0] != orders[2]


def test_same_seed_same_batches_whatever_the_generators_did(pairs):
    first = epoch_batches(*train_loader(*pairs, seed=1), epoch=2)
    # An arm that builds another network draws other numbers from the global generators before training.
    torch.rand(1000)
    random.random()
    second = epoch_batches(*train_loader(*pairs, seed=1), epoch=2)
    assert len(first) == len(second) == 12
    assert all(torch.equal(a, c) and torch.equal(b, d) for (a, b), (c, d) in zip(first, second))
    other = epoch_batches(*train_loader(*pairs, seed=2), epoch=2)
    assert not all(torch.equal(a, c) for (a, _), (c, _) in zip(first, other))
