"""Fixes for BasicSR 1.4.2 (the only release on PyPI), as run with torch >= 2.6 and torchvision >= 0.17.

One module per defect; each opens with the defect, the BasicSR function it replaces and why:

* ``torchvision_stand_in``: ``import basicsr`` fails with torchvision >= 0.17;
* ``options``: a run writes before its options are checked (``parse_options``; the start of every run:
  ``startup_checks``, ``cpu_distributed``, ``experiment_lock``, ``interruption``);
* ``resume``: resuming crashes without a GPU (``load_resume_state``);
* ``ema_buffers``: the EMA network keeps its initial buffers (``BaseModel.model_ema``);
* ``optimizers``: training takes Adam only (``BaseModel.get_optimizer``);
* ``cpu_distributed``: distributed training needs GPUs (``model_to_device``, ``validation``);
* ``data_order`` and ``training_state``: a resumed run does not continue the interrupted one
  (``build_dataloader``, ``save_training_state``, ``resume_training``);
* ``interruption``: Ctrl-C loses the steps since the last checkpoint (``update_learning_rate``);
* ``experiment_lock``: two runs can share an experiment folder;
* ``model_options``: bad network options surface deep inside ``build_model``;
* ``image_errors``: unreadable images crash far from their cause (``imfrombytes``, ``FileClient.get``);
* ``nonfinite``: a diverging run trains on, saves NaN and reports a PSNR (``SRModel.optimize_parameters``,
  ``save``, validation).

``patching`` is the one helper that installs replacements, also where BasicSR imported the originals by
name. ``apply()`` installs everything; it is idempotent and runs when ``deconv_basicsr`` is imported. The
stand-in must exist when BasicSR is first imported; the modules import BasicSR inside their functions only.
"""
from deconv_basicsr.compat import (cpu_distributed, data_order, ema_buffers, image_errors, interruption,
                                   model_options, nonfinite, optimizers, options, resume, training_state)
from deconv_basicsr.compat.experiment_lock import ExperimentLockedError
from deconv_basicsr.compat.image_errors import CorruptImageError
from deconv_basicsr.compat.model_options import OptionValueError, check_model_options
from deconv_basicsr.compat.resume import load_resume_state, patch_main_train_script, resume_device
from deconv_basicsr.compat.startup_checks import (DatasetError, OptionPathError, check_option_file,
                                                  check_option_paths, check_startup)
from deconv_basicsr.compat.torchvision_stand_in import FUNCTIONAL_TENSOR, install_functional_tensor_stand_in

__all__ = [
    'apply', 'FUNCTIONAL_TENSOR', 'install_functional_tensor_stand_in', 'load_resume_state', 'resume_device',
    'patch_main_train_script', 'check_startup', 'check_option_paths', 'check_option_file', 'check_model_options',
    'OptionPathError', 'OptionValueError', 'DatasetError', 'CorruptImageError', 'ExperimentLockedError'
]


def apply():
    """Install the torchvision stand-in, import BasicSR and install every replacement (idempotent)."""
    install_functional_tensor_stand_in()
    import basicsr  # noqa: F401  (after the stand-in, which it needs)

    for module in (options, resume, ema_buffers, optimizers, cpu_distributed, data_order, training_state,
                   interruption, model_options, image_errors, nonfinite):
        module.install()
