"""Defect: a training state does not hold what a resumed run needs to continue exactly.

BasicSR 1.4.2's ``BaseModel.save_training_state`` stores the epoch, the iteration, optimizers and
schedulers; ``parse_options`` seeds the random generators afresh at every start. What else a run carries
from one iteration to the next, and so what a resumed run lacked:

* every process's random generators (Python, NumPy, torch CPU and CUDA): dropout, degradations drawn in
  ``feed_data``, ...;
* FastDeconv's fast mode (``stats_period > 1``): the statistics held between refreshes, which are not in
  the checkpoints;
* whatever a model adds in ``local_training_state`` (``DeconvSRModel``: the training batches it
  recalibrates on).

``save_training_state`` (replaced) gathers ``local_training_state()`` and the random state from every process
(a collective: BasicSR's ``save`` runs on all processes) and rank 0 writes BasicSR's keys plus ``rng_states``
and ``local_states``, one entry per rank. ``resume_training`` (wrapped) restores this rank's entries when the
number of processes is the same. ``BaseModel`` gains ``local_training_state`` / ``load_local_training_state``,
for models to extend.
"""
import os.path as osp
import random
import time

import numpy as np
import torch
from torch import nn

from deconv_basicsr.compat.patching import replace, wrap


def rng_state():
    """The state of the global random generators: Python's, NumPy's, torch's CPU and CUDA generators."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        'python': [version, list(internal), gauss],
        'numpy': [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
        'torch': torch.get_rng_state(),
        'cuda': torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
    }


def set_rng_state(state):
    """Restore the generators from ``rng_state()``'s value (CUDA ones only if CUDA is in use here too)."""
    version, internal, gauss = state['python']
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state['numpy']
    np.random.set_state((kind, keys.cpu().numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state['torch'].cpu())
    if state['cuda'] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state['cuda']])


def _networks(model):
    """The model's networks (``net_g``, ``net_g_ema``, ``net_d``, ...), unwrapped, by attribute name."""
    return {name: model.get_bare_model(value) for name, value in vars(model).items()
            if name.startswith('net_') and isinstance(value, nn.Module)}


def _fast_mode_layers(net):
    from deconv_basicsr.layers import FastDeconv

    return {name: m for name, m in net.named_modules() if isinstance(m, FastDeconv)}


def local_training_state(self):
    """What this process alone carries into its next iteration, besides checkpoints, optimizers and schedulers.

    Here: the fast mode's held statistics of every FastDeconv layer, as ``{net: {layer: state}}``. Models
    extend it (and ``load_local_training_state``); tensors are moved to the CPU.
    """
    held = {}
    for net_name, net in _networks(self).items():
        layers = {name: layer.fast_mode_state() for name, layer in _fast_mode_layers(net).items()}
        layers = {name: {k: v.cpu() if torch.is_tensor(v) else v for k, v in state.items()}
                  for name, state in layers.items() if state is not None}
        if layers:
            held[net_name] = layers
    return {'fast_mode': held}


def load_local_training_state(self, state):
    """Restore what ``local_training_state`` returned (after the networks' checkpoints are loaded)."""
    for net_name, net in _networks(self).items():
        held = state.get('fast_mode', {}).get(net_name, {})
        for name, layer in _fast_mode_layers(net).items():
            layer.load_fast_mode_state(held.get(name))


def save_training_state(self, epoch, current_iter):
    """Save optimizers, schedulers, and every process's random and local state, for resuming.

    Args:
        epoch (int): Current epoch.
        current_iter (int): Current iteration; -1 (the final save) writes no state, as in BasicSR.
    """
    from basicsr.utils import get_root_logger
    from torch import distributed as dist

    if current_iter == -1:
        return
    processes = [{'rng': rng_state(), 'local': self.local_training_state()}]
    if self.opt.get('dist'):
        mine, processes = processes[0], [None] * dist.get_world_size()
        dist.all_gather_object(processes, mine)
    if self.opt.get('rank', 0) != 0:
        return
    state = {
        'epoch': epoch, 'iter': current_iter, 'optimizers': [o.state_dict() for o in self.optimizers],
        'schedulers': [s.state_dict() for s in self.schedulers],
        'rng_states': [p['rng'] for p in processes], 'local_states': [p['local'] for p in processes]
    }
    save_path = osp.join(self.opt['path']['training_states'], f'{current_iter}.state')
    for retry in range(3):  # as BasicSR: avoid occasional writing errors
        try:
            torch.save(state, save_path)
            return
        except Exception as error:
            get_root_logger().warning(f'Save training state error: {error}, remaining retry times: {2 - retry}')
            time.sleep(1)
    get_root_logger().warning(f'Still cannot save {save_path}. Just ignore it.')


def resume_training(original, self, resume_state):
    from basicsr.utils import get_root_logger

    original(self, resume_state)
    world_size, rank = self.opt.get('world_size', 1), self.opt.get('rank', 0)
    states = resume_state.get('rng_states')
    if states and len(states) == world_size:
        set_rng_state(states[rank])
        self.load_local_training_state((resume_state.get('local_states') or [{}] * world_size)[rank])
    elif states:
        get_root_logger().warning(f'Not restoring random and local states: saved by {len(states)} processes, '
                                  f'resumed by {world_size}.')


def install():
    from basicsr.models.base_model import BaseModel

    replace(BaseModel, 'local_training_state', local_training_state)
    replace(BaseModel, 'load_local_training_state', load_local_training_state)
    replace(BaseModel, 'save_training_state', save_training_state)
    wrap(BaseModel, 'resume_training', resume_training)
