"""Reproducible data order and random state for training that stops and resumes exactly.

* ``rng_state()`` / ``set_rng_state(state)``: the global random generators (Python, NumPy, torch CPU and
  CUDA) as a value that ``torch.load`` accepts with ``weights_only=True`` (plain lists and tensors).
* ``SeededSampler`` / ``SeededDataset``: every training sample draws its augmentation randomness (crop,
  flip, degradations) from its own seed, derived from the run's seed, the process rank, the epoch and the
  sample's position in the epoch. Which worker loads a sample, how many workers there are and where a run
  was resumed then no longer matter. The sampler can also start an epoch part-way, at the position a
  resumed run stopped at.

``deconv_basicsr.compat`` installs them into BasicSR's training pipeline.
"""
import contextlib
import random

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler


def rng_state():
    """The state of the global random generators: Python's, NumPy's, torch's CPU and CUDA generators."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        'python': [version, list(internal), gauss],
        'numpy': [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
        'torch': torch.get_rng_state(),
        'cuda': torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
    }


def set_rng_state(state):
    """Restore the generators from ``rng_state()``'s value (CUDA ones only if CUDA is in use here too)."""
    version, internal, gauss = state['python']
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state['numpy']
    np.random.set_state((kind, keys.cpu().numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state['torch'].cpu())
    if state['cuda'] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state['cuda']])


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
        sampler (Sampler): The index sampler; an ``epoch`` attribute (set by ``set_epoch``, as BasicSR's
            ``EnlargedSampler`` and ``DistributedSampler`` have) enters the seeds.
        seed (int): The run's seed.
        rank (int): This process's rank.
    """

    def __init__(self, sampler, seed, rank=0):
        self.sampler, self.seed, self.rank = sampler, seed, rank
        self._start = None  # (epoch, position): where the next pass over that epoch starts

    def start_at(self, epoch, position):
        """Make the next pass over ``epoch`` skip its first ``position`` samples (a resumed run)."""
        self._start = (epoch, position)

    def __iter__(self):
        epoch = getattr(self.sampler, 'epoch', 0)
        start = 0
        if self._start is not None and self._start[0] == epoch:
            start, self._start = self._start[1], None
        for position, index in enumerate(self.sampler):
            if position >= start:
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
