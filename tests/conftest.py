"""Shared fixtures; the plain helpers behind them live in ``helpers.py`` (see its docstring).

* ``image_pairs``: a tiny paired dataset (4 smooth 32×32 GT images, 16×16 LQ) in a temporary folder,
  as ``(gt_dir, lq_dir)``.
"""
import pytest

from helpers import write_image_pairs


@pytest.fixture
def image_pairs(tmp_path):
    """``(gt_dir, lq_dir)`` of a tiny x2 paired dataset under ``tmp_path / 'data'``."""
    return write_image_pairs(tmp_path / 'data')
