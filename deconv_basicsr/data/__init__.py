"""Datasets, registered into BasicSR's ``DATASET_REGISTRY``."""
from deconv_basicsr.data.cached_paired_image_dataset import CachedPairedImageDataset

__all__ = ['CachedPairedImageDataset']
