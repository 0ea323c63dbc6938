"""The project's training features, on BasicSR's own pipelines.

Active in the project's entry points (``python -m deconv_basicsr.train`` / ``test``, which call
``train_pipeline`` / ``test_pipeline``) and, for what lives in the model, in any run of a ``ResumableModel``
(``DeconvSRModel`` is one). A run through BasicSR's own ``train.py`` with another model trains as with
BasicSR alone. docs/compatibility.md lists what is where.

* ``pipeline``: the pipelines, and the one place where a run starts (``parse_options``);
* ``options``: the one loader of option files, and a run's options (``read_options``);
* ``checks`` and ``model_options``: start-up checks (paths, model and network options, images), the one
  validation point;
* ``resumable``: ``ResumableModel`` (exact training states, the stop on Ctrl-C, any ``torch.optim``
  optimizer, distributed CPU networks) and ``ResumePosition``, where a run's data starts;
* ``data_order``: seeded, resumable training data order;
* ``nonfinite``: the non-finite guard (a diverging run stops, exit code 3, and never saves NaN);
* ``interruption``, ``lock``, ``distributed``, ``images``: Ctrl-C, the experiment lock, distributed training
  on the CPU, image errors that name their file.
"""
import deconv_basicsr.plugin  # noqa: F401  (BasicSR importable, the archs and the model registered)
from deconv_basicsr.training.checks import (DatasetError, OptionPathError, check_option_file, check_option_paths,
                                            check_startup)
from deconv_basicsr.training.images import CorruptImageError
from deconv_basicsr.training.lock import ExperimentLockedError
from deconv_basicsr.training.model_options import OptionValueError, check_model_options
from deconv_basicsr.training.options import load_options, read_options
from deconv_basicsr.training.pipeline import test_pipeline, train_pipeline
from deconv_basicsr.training.resumable import ResumableModel, ResumePosition, resumable

__all__ = [
    'train_pipeline', 'test_pipeline', 'ResumableModel', 'ResumePosition', 'resumable', 'load_options',
    'read_options', 'check_startup', 'check_option_paths', 'check_option_file', 'check_model_options',
    'OptionPathError', 'OptionValueError', 'DatasetError', 'CorruptImageError', 'ExperimentLockedError'
]
