"""Defect: resuming crashes without a GPU, and ``--auto_resume`` looks in the wrong folder (BasicSR 1.4.2).

``basicsr.train.load_resume_state`` maps the state onto ``torch.cuda.current_device()`` ("Found no NVIDIA
driver") and ``--auto_resume`` looks under ``./experiments``, not in the root path where states are saved. The
replacement loads onto the run's device from ``path.training_states``. ``train.py`` run as a script has its own
copy, replaced when the script calls ``parse_options`` (wrapped to do only that). ``torch.load`` keeps its
``weights_only=True``, which loads the states BasicSR and this package write.
"""
from os import path as osp

from deconv_basicsr.compat.patching import replace, replace_in_main_script, wrap


def resume_device(opt):
    """Where a resume state is loaded: the current CUDA device when the run uses CUDA, else the CPU.

    Optimizers move their state onto their parameters' device when loading it anyway.
    """
    import torch

    if opt.get('num_gpu', 0) != 0 and torch.cuda.is_available():
        return torch.device('cuda', torch.cuda.current_device())
    return torch.device('cpu')


def latest_training_state(opt):
    """Path of the latest ``<iter>.state`` in the experiment's ``training_states`` folder, or None."""
    from basicsr.utils import scandir

    folder = opt['path'].get('training_states') or osp.join('experiments', opt['name'], 'training_states')
    if not osp.isdir(folder):
        return None
    states = list(scandir(folder, suffix='state', recursive=False, full_path=False))
    if not states:
        return None
    return osp.join(folder, f"{max(float(name.split('.state')[0]) for name in states):.0f}.state")


def load_resume_state(opt):
    """Device-aware ``basicsr.train.load_resume_state``: the latest state with ``auto_resume`` (recorded in
    ``path.resume_state``), else ``path.resume_state``, loaded onto ``resume_device(opt)``; BasicSR's
    ``check_resume`` then points ``pretrain_network_*`` at its checkpoints. None when there is nothing to resume."""
    import torch
    from basicsr.utils import check_resume

    if opt['auto_resume']:
        path = latest_training_state(opt)
        if path is not None:
            opt['path']['resume_state'] = path
    else:
        path = opt['path'].get('resume_state')
    if not path:
        return None
    resume_state = torch.load(path, map_location=resume_device(opt))
    check_resume(opt, resume_state['iter'])
    return resume_state


def parse_options(original, root_path, is_train=True):
    """BasicSR's ``parse_options``, after giving BasicSR's ``train.py`` run as a script this module's
    ``load_resume_state`` (the script's own copy exists from then on)."""
    replace_in_main_script('load_resume_state', load_resume_state)
    return original(root_path, is_train)


def install():
    import basicsr.test
    import basicsr.train
    from basicsr.utils import options

    replace(basicsr.train, 'load_resume_state', load_resume_state)
    wrap(options, 'parse_options', parse_options, bound_in=(basicsr.train, basicsr.test))
