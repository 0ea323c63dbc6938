"""Data order: a resumed run sees the training data the interrupted one would have seen.

BasicSR 1.4.2's training loader draws crops and flips from the process-wide random generators (seeded once
per start), re-seeds every data-loader worker alike at each epoch, and a resumed run restarts the
interrupted epoch from its first batch. The project's pipeline builds the training loader (a sampler and a
seed, as ``train_pipeline`` builds it) with ``build_dataloader`` below:

* ``SeededSampler`` / ``SeededDataset``: each sample draws its augmentation randomness from its own seed,
  derived from (seed, rank, epoch, position in the epoch), whatever worker loads it and wherever a run was
  resumed;
* the order of the samples depends on the run's seed (``manual_seed``) as well as the epoch: BasicSR's
  ``EnlargedSampler`` shuffles with ``manual_seed(epoch)`` alone, so every seed of an experiment would see
  the same batches. Seed 0 keeps BasicSR's order; any other seed shuffles the same way from a generator
  seeded by (seed, epoch);
* the loader starts at the run's ``ResumePosition.start_iter`` (the resumed iteration): a pass over epoch
  ``e`` skips the batches of iterations before it. The skip depends only on the epoch and the
  start iteration, so a pass that is thrown away (BasicSR's ``CPUPrefetcher`` starts one when it is built,
  before the training loop sets the epoch) cannot use it up;
* it records ``ResumePosition.batches_per_epoch`` (the loader drops the last incomplete batch), which
  places any iteration in its epoch (a stop after Ctrl-C saves it);
* its workers' base seeds come from the loader's own generator, not torch's global one.

Validation and test loaders are BasicSR's. The augmentations of a run are not those BasicSR alone would
draw (they are as random): runs through BasicSR's own ``train.py`` keep BasicSR's.
"""
import contextlib
import random

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler



def sample_seed(*values):
    """A 64-bit seed that depends on every one of ``values`` (non-negative ints), well mixed."""
    low, high = np.random.SeedSequence(list(values)).generate_state(2)
    return int(low) | (int(high) << 32)


@contextlib.contextmanager
def seeded(seed):
    """Seed Python's, NumPy's and torch's CPU generators with ``seed`` inside; restore their states after.

    Restoring keeps the caller's own random streams untouched when data loads in the main process.
    """
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.default_generator.manual_seed(seed)
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])


class SeededSampler(Sampler):
    """Yields ``(index, seed)`` pairs: the indices of ``sampler`` with one seed per position.

    Args:
        sampler (Sampler): The index sampler; its ``epoch`` attribute (set by ``set_epoch``, as BasicSR's
            ``EnlargedSampler`` and ``DistributedSampler`` have) enters the seeds.
        seed (int): The run's seed.
        rank (int): This process's rank.
        start_iter (int): Iterations already done: a pass over an epoch starts after them.
        batch_size (int): Samples per batch (incomplete last batches are dropped); the loader sets it.
    """

    def __init__(self, sampler, seed, rank=0, start_iter=0, batch_size=1):
        self.sampler, self.seed, self.rank = sampler, seed, rank
        self.batch_size, self.start_iter = batch_size, start_iter

    def batches_per_epoch(self):
        return len(self.sampler) // self.batch_size

    def indices(self, epoch):
        """The sampler's indices for ``epoch``: its own for seed 0, else (for BasicSR's ``EnlargedSampler``)
        the same construction, a permutation of the enlarged dataset cut to this rank, seeded by (seed, epoch)."""
        from basicsr.data.data_sampler import EnlargedSampler

        if self.seed == 0 or not isinstance(self.sampler, EnlargedSampler):
            return list(self.sampler)
        sampler = self.sampler
        generator = torch.Generator().manual_seed(sample_seed(self.seed, epoch))
        order = torch.randperm(sampler.total_size, generator=generator).tolist()
        size = len(sampler.dataset)
        return [index % size for index in order[sampler.rank:sampler.total_size:sampler.num_replicas]]

    def __iter__(self):
        epoch = getattr(self.sampler, 'epoch', 0)
        per_epoch = self.batches_per_epoch()
        skip = min(max(self.start_iter - epoch * per_epoch, 0), per_epoch) * self.batch_size
        for position, index in enumerate(self.indices(epoch)):
            if position >= skip:
                yield index, sample_seed(self.seed, self.rank, epoch, position)

    def __len__(self):
        return len(self.sampler)


class SeededDataset(Dataset):
    """Loads item ``(index, seed)`` as ``dataset[index]`` with the random generators seeded by ``seed``."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __getitem__(self, item):
        index, seed = item
        with seeded(seed):
            return self.dataset[index]

    def __len__(self):
        return len(self.dataset)

    def __getattr__(self, name):
        # Attributes of the wrapped dataset (opt, paths, ...) stay reachable.
        if name == 'dataset':
            raise AttributeError(name)
        return getattr(self.dataset, name)


def build_dataloader(original, position, dataset, dataset_opt, num_gpu=1, dist=False, sampler=None, seed=None):
    """BasicSR's ``build_dataloader`` (``original``), seeded as above for the training loader, which starts at
    ``position.start_iter`` and records ``position.batches_per_epoch`` (``position``: a ``ResumePosition``)."""
    if dataset_opt['phase'] != 'train' or sampler is None or seed is None:
        return original(dataset, dataset_opt, num_gpu, dist, sampler, seed)
    from basicsr.utils.dist_util import get_dist_info

    rank, _ = get_dist_info()
    seeded_sampler = SeededSampler(sampler, seed, rank, position.start_iter)
    loader = original(SeededDataset(dataset), dataset_opt, num_gpu, dist, seeded_sampler, seed)
    seeded_sampler.batch_size = loader.batch_size
    loader.generator = torch.Generator().manual_seed(seed + rank)
    position.batches_per_epoch = seeded_sampler.batches_per_epoch()
    return loader
