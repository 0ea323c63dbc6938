"""The BasicSR plugin: importing this module makes BasicSR 1.4.2 importable and registers this package.

It applies the version-gated fixes of ``deconv_basicsr.compat`` (the torchvision stand-in first), then
registers the layer ``FastDeconv`` and the archs ``DeconvEDSR``, ``DeconvNet``, ``SRCNN``, ``DeconvSRCNN``
and ``Bicubic`` into BasicSR's ``ARCH_REGISTRY``, the model ``DeconvSRModel`` into its ``MODEL_REGISTRY``,
and the dataset ``CachedPairedImageDataset`` into its ``DATASET_REGISTRY``. Nothing else of BasicSR changes:
a run that uses none of these trains as without the plugin. The installed start-up hook
(``_deconv_basicsr_autoload``) imports this module when a process first imports ``basicsr``.
"""
from deconv_basicsr import compat

compat.apply()

from deconv_basicsr import archs, data, models  # noqa: E402,F401
