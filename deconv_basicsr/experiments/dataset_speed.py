"""CPU time a training set costs per batch, read through ``PairedImageDataset`` and ``CachedPairedImageDataset``.

Both datasets run in this process (no workers), in turn within every round, so that both see the same machine
load; each first reads every image once (the cache fills, the page cache warms for both), then draws
``batches`` batches of random samples, timed with ``time.process_time`` (CPU time of this process, which
another process's load changes little). A figure is the median over rounds.
"""
import random
import statistics
import time

DATASETS = ('PairedImageDataset', 'CachedPairedImageDataset')


def cpu_per_batch(options, batch_size=16, batches=100, rounds=3):
    """Milliseconds of CPU per batch of training samples for each dataset type: ``{type: ms}``.

    Args:
        options (dict): BasicSR options of a paired training set (``dataroot_gt``, ``dataroot_lq``,
            ``io_backend``, ``gt_size``, ``scale``, ...); ``type`` and ``phase`` are set here.
        batch_size (int): Samples per batch.
        batches (int): Batches timed per round.
        rounds (int): Rounds, each timing every dataset once.
    """
    import deconv_basicsr.plugin  # noqa: F401  (BasicSR importable, the dataset registered)
    from basicsr.data import build_dataset

    datasets = {name: build_dataset({**options, 'type': name, 'phase': 'train'}) for name in DATASETS}
    for dataset in datasets.values():
        for index in range(len(dataset)):
            dataset[index]
    times = {name: [] for name in DATASETS}
    for round_ in range(rounds):
        for name, dataset in datasets.items():
            draw = random.Random(round_)
            start = time.process_time()
            for _ in range(batches * batch_size):
                dataset[draw.randrange(len(dataset))]
            times[name].append((time.process_time() - start) / batches * 1e3)
    return {name: statistics.median(values) for name, values in times.items()}
