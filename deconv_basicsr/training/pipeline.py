"""The project's training and test pipelines: BasicSR's own, with the project's features for their run.

``train_pipeline`` and ``test_pipeline`` run ``basicsr.train.train_pipeline`` and
``basicsr.test.test_pipeline`` unchanged, with some of the functions they call replaced for the duration of
the call only (``swapped``); nothing is left changed in BasicSR afterwards:

* ``parse_options``: the one place where a run starts. The options are read once (``options``; an option
  file that cannot be read is reported in a few lines), checked
  (``checks.check_startup``; a failure prints its message and exits with code 1 before anything is written,
  ``--debug`` shows the traceback instead), then torch.distributed starts (``distributed``, the CPU
  included), the random seed is set as BasicSR sets it and, for training, the experiment lock is taken
  (``lock``) and Ctrl-C and SIGTERM ask the run to stop (``interruption``);
* ``load_resume_state`` (training): ``compat``'s, and the resumed iteration becomes the run's
  ``ResumePosition``;
* ``build_dataloader`` (training): the seeded data order, from that position (``data_order``);
* ``build_model``: the model class of ``model_type`` made resumable (``resumable``), given the position;
* image errors name their file (``images``).

``python -m deconv_basicsr.train`` and ``python -m deconv_basicsr.test`` call them with the current directory
as root path; a script of one's own calls them as BasicSR's ``train.py`` calls ``train_pipeline``.
"""
import contextlib
import os
import sys

from deconv_basicsr.training.resumable import ResumePosition, resumable


@contextlib.contextmanager
def swapped(replacements):
    """Within: each ``(owner, name, new)`` of ``replacements`` is ``owner.<name>``; restored on exit."""
    originals = [(owner, name, getattr(owner, name)) for owner, name, _ in replacements]
    try:
        for owner, name, new in replacements:
            setattr(owner, name, new)
        yield
    finally:
        for owner, name, original in reversed(originals):
            setattr(owner, name, original)


def _fail(error, debug):
    """Report a start-up error in a few lines (the traceback with ``debug``, BasicSR's ``--debug``) and exit."""
    if debug:
        raise error
    if os.environ.get('RANK', '0') == '0':  # once, not by every process of a torchrun
        print(f'{error}\n({type(error).__name__}, found at start-up: nothing was written; --debug shows the '
              'traceback)', file=sys.stderr, flush=True)
    sys.exit(1)


def parse_options(root_path, is_train=True):
    """Replaces BasicSR's ``parse_options`` in the project's pipelines (see the module). Returns ``(opt, args)``."""
    from basicsr.utils import set_random_seed
    from basicsr.utils.dist_util import get_dist_info

    from deconv_basicsr.training.checks import DatasetError, OptionPathError, check_startup
    from deconv_basicsr.training.distributed import init_processes
    from deconv_basicsr.training.images import CorruptImageError
    from deconv_basicsr.training.interruption import install_signal_handlers
    from deconv_basicsr.training.lock import ExperimentLockedError, lock_experiment
    from deconv_basicsr.training.model_options import OptionValueError
    from deconv_basicsr.training.options import OptionFileError, read_options

    try:
        opt, args = read_options(root_path, is_train)
    except OptionFileError as error:
        _fail(error, '--debug' in sys.argv)
    try:
        check_startup(opt, source=args.opt, all_images=args.check_images)
    except (OptionPathError, OptionValueError, DatasetError, CorruptImageError) as error:
        _fail(error, args.debug)

    if args.launcher == 'none':
        print('Disable distributed.', flush=True)
    else:
        opt['dist'] = True
        init_processes(args.launcher, opt)
    opt['rank'], opt['world_size'] = get_dist_info()
    set_random_seed(opt['manual_seed'] + opt['rank'])

    if is_train:
        try:
            lock_experiment(opt)
        except ExperimentLockedError as error:
            _fail(error, args.debug)
        install_signal_handlers(opt['rank'])
    return opt, args


class _Run:
    """The replacements of one pipeline call, sharing its ``ResumePosition``."""

    def __init__(self):
        import basicsr.data

        self.position = ResumePosition()
        self.original_build_dataloader = basicsr.data.build_dataloader

    def load_resume_state(self, opt):
        from deconv_basicsr.compat import load_resume_state

        state = load_resume_state(opt)
        if state is not None:
            self.position.start_iter = state['iter']
        return state

    def build_dataloader(self, dataset, dataset_opt, num_gpu=1, dist=False, sampler=None, seed=None):
        from deconv_basicsr.training.data_order import build_dataloader

        return build_dataloader(self.original_build_dataloader, self.position, dataset, dataset_opt, num_gpu, dist,
                                sampler, seed)

    def build_model(self, opt):
        """BasicSR's ``build_model``, building the resumable class of ``model_type``."""
        from copy import deepcopy

        from basicsr.utils import get_root_logger
        from basicsr.utils.registry import MODEL_REGISTRY

        model = resumable(MODEL_REGISTRY.get(opt['model_type']))(deepcopy(opt))
        model.resume_position = self.position
        get_root_logger().info(f'Model [{model.__class__.__name__}] is created.')
        return model

    def replacements(self, pipeline_module):
        from deconv_basicsr.training.images import replacements as image_replacements

        return [(pipeline_module, 'parse_options', parse_options),
                (pipeline_module, 'build_model', self.build_model),
                (pipeline_module, 'build_dataloader', self.build_dataloader),
                *([(pipeline_module, 'load_resume_state', self.load_resume_state)]
                  if hasattr(pipeline_module, 'load_resume_state') else []),
                *image_replacements()]


def train_pipeline(root_path):
    """BasicSR's ``train_pipeline`` with the project's features (see the module)."""
    import basicsr.train

    from deconv_basicsr.training.distributed import end_processes

    with swapped(_Run().replacements(basicsr.train)):
        basicsr.train.train_pipeline(root_path)
    end_processes()


def test_pipeline(root_path):
    """BasicSR's ``test_pipeline`` with the project's features (see the module)."""
    import basicsr.test

    with swapped(_Run().replacements(basicsr.test)):
        basicsr.test.test_pipeline(root_path)
