"""CachedPairedImageDataset: the samples of BasicSR's PairedImageDataset, each image decoded once."""
import random
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from helpers import write_image_pairs

import deconv_basicsr.plugin  # noqa: F401  (BasicSR importable, the dataset registered)
from basicsr.data import build_dataset
from basicsr.data.paired_image_dataset import PairedImageDataset

from deconv_basicsr import training
from deconv_basicsr.data import CachedPairedImageDataset
from deconv_basicsr.prepare import write_lmdb_from_folder
from deconv_basicsr.training.images import replacements as image_replacements
from deconv_basicsr.training.pipeline import swapped


def _options(gt, lq, dataset_type, backend='disk'):
    return {'name': 'pairs', 'type': dataset_type, 'dataroot_gt': gt, 'dataroot_lq': lq,
            'io_backend': {'type': backend}, 'phase': 'train', 'scale': 2, 'gt_size': 16, 'use_hflip': True,
            'use_rot': True}


def _unusual_images(lq_dir, gt_dir):
    """Replace three pairs by what IMREAD_COLOR converts: gray, with alpha, 16-bit."""
    rng = np.random.default_rng(1)
    for index, (channels, dtype, top) in enumerate([(None, np.uint8, 255), (4, np.uint8, 255), (3, np.uint16, 65535)]):
        for folder, size in ((gt_dir, 32), (lq_dir, 16)):
            shape = (size, size) if channels is None else (size, size, channels)
            cv2.imwrite(str(Path(folder, f'{index:04d}.png')), rng.integers(0, top, shape, endpoint=True).astype(dtype))


@pytest.mark.parametrize('backend', ['disk', 'lmdb'])
def test_same_samples_as_paired_image_dataset(tmp_path, backend):
    gt_dir, lq_dir = write_image_pairs(tmp_path / 'data', num_images=5)
    _unusual_images(lq_dir, gt_dir)
    if backend == 'lmdb':
        gt_dir, lq_dir = str(tmp_path / 'gt.lmdb'), str(tmp_path / 'lq.lmdb')
        write_lmdb_from_folder(str(tmp_path / 'data' / 'gt'), gt_dir)
        write_lmdb_from_folder(str(tmp_path / 'data' / 'lq'), lq_dir)
    plain = PairedImageDataset(_options(gt_dir, lq_dir, 'PairedImageDataset', backend))
    expected = []
    for index in range(len(plain)):
        random.seed(index)  # the crop and the flips
        expected.append(plain[index])
    if backend == 'lmdb':  # an LMDB opens once per process
        for env in plain.file_client.client._client.values():
            env.close()

    cached = build_dataset(_options(gt_dir, lq_dir, 'CachedPairedImageDataset', backend))
    assert isinstance(cached, CachedPairedImageDataset)
    for _ in range(2):  # the second pass decodes from the cache
        for index, want in enumerate(expected):
            random.seed(index)
            sample = cached[index]
            assert torch.equal(sample['gt'], want['gt']) and torch.equal(sample['lq'], want['lq'])
            assert (sample['gt_path'], sample['lq_path']) == (want['gt_path'], want['lq_path'])
    assert len(cached.file_client.images) == 2 * len(expected)


def test_an_undecodable_image_is_not_cached_and_still_named(tmp_path):
    gt_dir, lq_dir = write_image_pairs(tmp_path / 'data', num_images=1)
    bad = Path(lq_dir, '0000.png')
    bad.write_bytes(bad.read_bytes()[:40])
    dataset = CachedPairedImageDataset(_options(gt_dir, lq_dir, 'CachedPairedImageDataset'))
    with swapped(image_replacements()):
        for _ in range(2):
            with pytest.raises(training.CorruptImageError, match=rf'Cannot decode image {re.escape(str(bad))}'):
                dataset[0]
    assert list(dataset.file_client.images) == [('gt', str(Path(gt_dir, '0000.png')))]


def test_the_benchmark_times_both_datasets(tmp_path):
    from deconv_basicsr.experiments.dataset_speed import DATASETS, cpu_per_batch

    gt_dir, lq_dir = write_image_pairs(tmp_path / 'data', num_images=3)
    ms = cpu_per_batch(_options(gt_dir, lq_dir, None), batch_size=2, batches=2, rounds=1)
    assert sorted(ms) == sorted(DATASETS) and all(value > 0 for value in ms.values())
