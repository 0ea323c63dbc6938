"""Shared fixtures; the plain helpers behind them live in ``helpers.py`` (see its docstring).

Under pytest-xdist (``-n 2``) every worker computes in-process with one torch thread: torch's default, a thread
per core in each process, has two workers on two cores wait on each other's threads. Subprocesses the tests
start keep torch's default.

* ``image_pairs``: a tiny paired dataset (4 smooth 32×32 GT images, 16×16 LQ) in a temporary folder,
  as ``(gt_dir, lq_dir)``.
"""
import os

import pytest

from helpers import write_image_pairs


def pytest_configure(config):
    if os.environ.get('PYTEST_XDIST_WORKER'):
        import torch

        torch.set_num_threads(1)


@pytest.fixture
def image_pairs(tmp_path):
    """``(gt_dir, lq_dir)`` of a tiny x2 paired dataset under ``tmp_path / 'data'``."""
    return write_image_pairs(tmp_path / 'data')
