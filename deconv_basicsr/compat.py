"""Compatibility patches for BasicSR 1.4.2 (the only release on PyPI).

Every fix this project makes to the installed BasicSR lives here, each with its reason. All target
BasicSR 1.4.2 as run with torch >= 2.6 and torchvision >= 0.17, on machines with or without a GPU:

1. ``install_functional_tensor_stand_in``: torchvision 0.17 removed
   ``torchvision.transforms.functional_tensor``, which ``basicsr/data/degradations.py`` imports, so
   ``import basicsr`` fails. A stand-in module is installed before BasicSR is first imported.
2. ``load_resume_state``: BasicSR's version (``basicsr/train.py``) maps the resume state onto
   ``torch.cuda.current_device()``, so ``--auto_resume`` and ``path.resume_state`` crash without a GPU.
   It replaces ``basicsr.train.load_resume_state``, and the copy defined by BasicSR's own ``train.py``
   when that file runs as a script (through a wrapper around ``parse_options``).
3. ``model_ema``: ``BaseModel.model_ema`` averages parameters only, so the buffers of ``net_g_ema``
   (BatchNorm statistics, FastDeconv's running mean and whitening matrix) keep their initial values.

``apply()`` installs all of them; it is idempotent and is called when ``deconv_basicsr`` is imported.
This module imports BasicSR (and torch) only inside the functions, so that the stand-in can be installed
before BasicSR is first imported.
"""
import functools
import importlib.util
import os.path as osp
import sys
import types

#: Name of the torchvision module that BasicSR 1.4.2 imports and torchvision >= 0.17 no longer has.
FUNCTIONAL_TENSOR = 'torchvision.transforms.functional_tensor'

# Marks the functions installed here, so that no patch is applied twice.
_PATCH_MARK = '_deconv_basicsr_patch'


def _mark(func):
    setattr(func, _PATCH_MARK, True)
    return func


def _is_patched(func):
    return getattr(func, _PATCH_MARK, False)


def install_functional_tensor_stand_in():
    """Provide ``torchvision.transforms.functional_tensor`` if this torchvision lacks it.

    BasicSR 1.4.2 (``basicsr/data/degradations.py``) does
    ``from torchvision.transforms.functional_tensor import rgb_to_grayscale``; torchvision 0.17 removed
    that module, so ``import basicsr`` raises ``ModuleNotFoundError``. The stand-in exposes the same
    function from the public ``torchvision.transforms.functional``. Must run before BasicSR is first
    imported; does nothing when the real module exists.

    Returns:
        bool: True if the stand-in was installed by this call.
    """
    if FUNCTIONAL_TENSOR in sys.modules or importlib.util.find_spec(FUNCTIONAL_TENSOR) is not None:
        return False
    from torchvision.transforms import functional

    stand_in = types.ModuleType(
        FUNCTIONAL_TENSOR, 'Stand-in installed by deconv_basicsr.compat for BasicSR 1.4.2 '
        '(torchvision >= 0.17 removed this module).')
    stand_in.rgb_to_grayscale = functional.rgb_to_grayscale
    sys.modules[FUNCTIONAL_TENSOR] = stand_in
    return True


def resume_device(opt):
    """Device onto which a resume state is loaded.

    The current CUDA device when the run uses GPUs (``num_gpu`` != 0) and CUDA is available, else the
    CPU. Optimizers move their state onto their parameters' device when loading it anyway.
    """
    import torch

    if opt.get('num_gpu', 0) != 0 and torch.cuda.is_available():
        return torch.device('cuda', torch.cuda.current_device())
    return torch.device('cpu')


@_mark
def load_resume_state(opt):
    """Device-aware replacement for BasicSR 1.4.2's ``basicsr.train.load_resume_state``.

    Same contract as the original: with ``opt['auto_resume']`` it picks the latest ``*.state`` file of the
    experiment and records it in ``opt['path']['resume_state']``; otherwise it uses
    ``opt['path']['resume_state']`` if set. It then loads the state and calls ``check_resume``.

    Differences, each fixing a crash or a wrong lookup:

    * The state is mapped onto ``resume_device(opt)``; the original calls ``torch.cuda.current_device()``
      and ``storage.cuda()``, which fail on a machine without a GPU.
    * ``--auto_resume`` looks in ``opt['path']['training_states']`` (where BasicSR saves them, under the
      root path); the original looks under ``./experiments`` relative to the current directory.

    ``torch.load`` keeps its default: since torch 2.6 that is ``weights_only=True``, which loads the
    states BasicSR writes (optimizer and scheduler state dicts, ``collections.Counter`` included).

    Args:
        opt (dict): Parsed options (``basicsr.utils.options.parse_options``).

    Returns:
        dict | None: The resume state, or None when there is nothing to resume from.
    """
    import torch
    from basicsr.utils import check_resume, scandir

    resume_state_path = None
    if opt['auto_resume']:
        state_path = opt['path'].get('training_states') or osp.join('experiments', opt['name'], 'training_states')
        if osp.isdir(state_path):
            states = list(scandir(state_path, suffix='state', recursive=False, full_path=False))
            if states:
                latest = max(float(name.split('.state')[0]) for name in states)
                resume_state_path = osp.join(state_path, f'{latest:.0f}.state')
                opt['path']['resume_state'] = resume_state_path
    elif opt['path'].get('resume_state'):
        resume_state_path = opt['path']['resume_state']

    if resume_state_path is None:
        return None
    resume_state = torch.load(resume_state_path, map_location=resume_device(opt))
    check_resume(opt, resume_state['iter'])
    return resume_state


def patch_load_resume_state():
    """Replace ``basicsr.train.load_resume_state`` (looked up at call time by ``train_pipeline``)."""
    import basicsr.train

    basicsr.train.load_resume_state = load_resume_state


def patch_main_train_script():
    """Patch BasicSR's own ``train.py`` when it runs as the ``__main__`` script.

    ``python basicsr/train.py`` (or ``python -m basicsr.train``) executes a second copy of that file as
    ``__main__``, with its own ``load_resume_state``; patching ``basicsr.train`` does not reach it. The
    script is recognised by defining both ``load_resume_state`` and ``train_pipeline`` itself.

    Returns:
        bool: True if ``__main__.load_resume_state`` was replaced.
    """
    main = sys.modules.get('__main__')
    func = getattr(main, 'load_resume_state', None)
    pipeline = getattr(main, 'train_pipeline', None)
    if (func is None or _is_patched(func) or getattr(func, '__module__', None) != '__main__'
            or getattr(pipeline, '__module__', None) != '__main__'):
        return False
    main.load_resume_state = load_resume_state
    return True


def patch_parse_options():
    """Wrap ``basicsr.utils.options.parse_options`` to call ``patch_main_train_script`` first.

    BasicSR's ``train.py`` imports ``parse_options`` after ``import basicsr`` has run (and with it this
    package, through the auto-load hook), defines ``load_resume_state`` and then calls ``parse_options``
    at the start of ``train_pipeline``, before ``load_resume_state``: the one moment at which the script's
    own copy can be replaced.
    """
    from basicsr.utils import options

    original = options.parse_options
    if _is_patched(original):
        return

    @_mark
    @functools.wraps(original)
    def parse_options(root_path, is_train=True):
        patch_main_train_script()
        return original(root_path, is_train=is_train)

    options.parse_options = parse_options


def patch_model_ema():
    """Make ``BaseModel.model_ema`` copy buffers as well as average parameters.

    BasicSR 1.4.2 averages ``net_g``'s parameters into ``net_g_ema`` and ignores buffers, so running
    statistics (BatchNorm, FastDeconv's running mean and whitening matrix, its step counter) of the EMA
    network stay at their initial values, and validation and the saved ``params_ema`` use them.
    Buffers are copied, not averaged: running statistics describe the activations of the current
    network, and they are themselves running averages already. ``SRModel`` calls ``model_ema(0)`` when it
    builds ``net_g_ema``, so the copy also covers initialisation.
    """
    import torch
    from basicsr.models.base_model import BaseModel

    original = BaseModel.model_ema
    if _is_patched(original):
        return

    @_mark
    @functools.wraps(original)
    def model_ema(self, decay=0.999):
        original(self, decay)
        net_g = self.get_bare_model(self.net_g)
        ema_buffers = dict(self.net_g_ema.named_buffers())
        with torch.no_grad():
            for name, buffer in net_g.named_buffers():
                if name in ema_buffers:
                    ema_buffers[name].copy_(buffer)

    BaseModel.model_ema = model_ema


_applied = False


def apply():
    """Install every patch of this module (idempotent).

    The torchvision stand-in comes first, then BasicSR is imported and patched.
    """
    global _applied
    if _applied:
        return
    install_functional_tensor_stand_in()
    import basicsr  # noqa: F401  (after the stand-in, which it needs)

    patch_load_resume_state()
    patch_parse_options()
    patch_model_ema()
    _applied = True
