"""MATLAB-compatible bicubic resizing: agreement with BasicSR's port, MATLAB's uint8 semantics."""
import numpy as np
import pytest

import deconv_basicsr.plugin  # noqa: F401  (BasicSR importable, the archs and the model registered)
from basicsr.utils.matlab_functions import imresize as basicsr_imresize

from deconv_basicsr.imresize import bicubic_downscale, imresize, resize_matrix


@pytest.fixture
def image():
    rng = np.random.default_rng(0)
    return rng.uniform(0, 1, size=(23, 30, 3)).astype(np.float32)


@pytest.mark.parametrize('scale', [1 / 2, 1 / 3, 1 / 4, 2, 3, 4])
def test_float_matches_basicsr(image, scale):
    ours = imresize(image.astype(np.float64), scale)
    theirs = basicsr_imresize(image, scale)
    assert ours.shape == theirs.shape
    # BasicSR computes in float32; ours in float64.
    np.testing.assert_allclose(ours, theirs, atol=1e-4)


def test_matrix_rows_sum_to_one_and_mirror_borders():
    m = resize_matrix(10, 5, 1 / 2)
    np.testing.assert_allclose(m.sum(axis=1), 1)
    assert m.shape == (5, 10)
    # Upscaling a constant signal stays constant, borders included.
    np.testing.assert_allclose(resize_matrix(7, 21, 3) @ np.ones(7), 1)


def test_uint8_semantics():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, size=(12, 18, 3), dtype=np.uint8)
    lr = bicubic_downscale(img, 3)
    assert lr.dtype == np.uint8 and lr.shape == (4, 6, 3)
    # uint8 rounds the intermediate: within one level of the float result.
    assert np.abs(lr.astype(float) - imresize(img.astype(np.float64), 1 / 3)).max() <= 1.0
    gray = imresize(img[..., 0], 2)
    assert gray.shape == (24, 36) and gray.dtype == np.uint8


def test_downscale_needs_mod_crop():
    with pytest.raises(ValueError, match='mod-crop'):
        bicubic_downscale(np.zeros((13, 12, 3), np.uint8), 2)
