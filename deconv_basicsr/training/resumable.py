"""The resumable model: what a training state must hold for a resumed run to continue exactly, and the
model's side of the project's training features.

BasicSR 1.4.2's ``BaseModel.save_training_state`` stores the epoch, the iteration, optimizers and
schedulers; ``parse_options`` seeds the random generators afresh at every start. What else a run carries
from one iteration to the next, and so what a resumed run lacked:

* every process's random generators (Python, NumPy, torch CPU and CUDA): dropout, degradations drawn in
  ``feed_data``, ...;
* what FastDeconv carries from step to step outside its checkpoints (``carried_state``): the fast mode's
  held statistics (``stats_period > 1``), the moments of the batches it pools (``stats_batches > 1``);
* whatever a model adds in ``local_training_state`` (``DeconvSRModel``: the training batches it
  recalibrates on).

``ResumableModel`` is a mixin for a BasicSR model class (put it first among the bases, as ``DeconvSRModel``
does; ``resumable(cls)`` derives one for any registered model, which is what the project's pipeline
builds). It overrides ``BaseModel`` methods:

* ``save_training_state`` gathers ``local_training_state()`` and the random state from every process
  (a collective: BasicSR's ``save`` runs on all processes); rank 0 writes BasicSR's keys plus ``rng_states``
  and ``local_states``, one entry per rank. ``resume_training`` restores this rank's entries when the number
  of processes is the same;
* ``update_learning_rate`` (called where every iteration starts) stops the run on a stop request
  (``interruption``): it saves the last finished iteration, at the ``ResumePosition`` the pipeline gave the
  model, and prints the command that resumes it;
* ``get_optimizer`` builds any optimizer of ``torch.optim`` by its name (BasicSR 1.4.2 builds Adam only);
* ``model_to_device`` and ``validation``: distributed training on the CPU (``distributed``);
* ``optimize_parameters``, ``save``, ``nondist_validation``, ``get_current_visuals`` and
  ``_log_validation_metric_values``: the non-finite guard (``nonfinite``).
"""
import os
import os.path as osp
import random
import signal
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from deconv_basicsr.training import nonfinite
from deconv_basicsr.training.interruption import agreed_stop, resume_command


@dataclass
class ResumePosition:
    """Where a training run's data starts, shared by the project's pipeline, its data loader and its model.

    Attributes:
        start_iter (int): Iterations done before this start (the resumed iteration; 0 for a new run).
        batches_per_epoch (int | None): Batches of one epoch of the training loader, once it is built.
    """
    start_iter: int = 0
    batches_per_epoch: int = None

    def epoch_of(self, iteration):
        """The epoch BasicSR's loop is in once ``iteration`` iterations are done: the one a run resumed after
        them continues (an epoch's last iteration leads into the next epoch)."""
        return iteration // self.batches_per_epoch


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


def _deconv_layers(net):
    from deconv_basicsr.layers import FastDeconv

    return {name: m for name, m in net.named_modules() if isinstance(m, FastDeconv)}


def _to_cpu(value):
    """``value`` with its tensors (in dicts, lists and tuples) on the CPU."""
    if torch.is_tensor(value):
        return value.cpu()
    if isinstance(value, dict):
        return {key: _to_cpu(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_cpu(item) for item in value)
    return value


class ResumableModel:
    """Mixin that makes a BasicSR model resumable exactly and stoppable by Ctrl-C (see the module).

    Attributes:
        resume_position (ResumePosition | None): Set by the project's pipeline; None elsewhere (then no stop
            request can arrive: the pipeline installs the signal handlers).
    """

    resume_position = None

    def local_training_state(self):
        """What this process alone carries into its next iteration, besides checkpoints, optimizers and schedulers.

        Here: what every FastDeconv layer carries (``carried_state``), as ``{net: {layer: state}}``, and the best
        validation values so far (BasicSR's ``best_metric_results``, which its log reports). Models
        extend it (and ``load_local_training_state``); tensors are moved to the CPU.
        """
        carried = {}
        for net_name, net in _networks(self).items():
            layers = {name: layer.carried_state() for name, layer in _deconv_layers(net).items()}
            layers = {name: _to_cpu(state) for name, state in layers.items() if state is not None}
            if layers:
                carried[net_name] = layers
        # BasicSR keeps the best validation values only in memory: a resumed run's "Best ... @ iter" would
        # forget every validation before the resume. Plain floats: torch.load(weights_only=True) refuses NumPy's.
        best = {dataset: {metric: {'better': record['better'], 'val': float(record['val']), 'iter': int(record['iter'])}
                          for metric, record in metrics.items()}
                for dataset, metrics in getattr(self, 'best_metric_results', {}).items()}
        return {'deconv_carried': carried, 'best_metric_results': best}

    def load_local_training_state(self, state):
        """Restore what ``local_training_state`` returned (after the networks' checkpoints are loaded)."""
        # 'fast_mode': the key of training states written before stats_batches (the same layer states).
        carried_states = state.get('deconv_carried', state.get('fast_mode', {}))
        for net_name, net in _networks(self).items():
            carried = carried_states.get(net_name, {})
            for name, layer in _deconv_layers(net).items():
                layer.load_carried_state(carried.get(name))
        if state.get('best_metric_results'):
            self.best_metric_results = state['best_metric_results']

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

    def resume_training(self, resume_state):
        """BasicSR's (optimizers, schedulers), then this process's random and local states."""
        from basicsr.utils import get_root_logger

        super().resume_training(resume_state)
        world_size, rank = self.opt.get('world_size', 1), self.opt.get('rank', 0)
        states = resume_state.get('rng_states')
        if states and len(states) == world_size:
            set_rng_state(states[rank])
            self.load_local_training_state((resume_state.get('local_states') or [{}] * world_size)[rank])
        elif states:
            get_root_logger().warning(f'Not restoring random and local states: saved by {len(states)} processes, '
                                      f'resumed by {world_size}.')

    def get_optimizer(self, optim_type, params, lr, **kwargs):
        """Any optimizer of ``torch.optim`` by its class name, with the option file's other keys as arguments
        (BasicSR 1.4.2 builds Adam only, so SGD with momentum, Ye et al.'s optimizer, could not be set)."""
        names = optimizer_names()
        if optim_type not in names:
            raise ValueError(f"optim type {optim_type!r} is not an optimizer of torch.optim; choose one of "
                             f"{', '.join(names)}")
        return getattr(torch.optim, optim_type)(params, lr, **kwargs)

    def update_learning_rate(self, current_iter, warmup_iter=-1):
        """BasicSR's, after stopping the run if a stop was requested (see ``interruption``); BasicSR's loop
        calls it where every iteration starts."""
        signum = agreed_stop(self.opt, self.device)
        if signum is not None:
            self.stop(signum, current_iter - 1)
        return super().update_learning_rate(current_iter, warmup_iter)

    def save_resume_point(self, epoch, current_iter):
        """Save what a run stopped after ``current_iter`` resumes from; models may save differently from their
        periodic ``save`` here (``DeconvSRModel`` does)."""
        self.save(epoch, current_iter)

    def stop(self, signum, current_iter):
        """Save the resume point after ``current_iter`` (unless the loop just did), tell how to resume, exit
        with 128 + ``signum``. Every process calls it at the same iteration (``agreed_stop``)."""
        from basicsr.utils import get_root_logger

        opt, position = self.opt, self.resume_position
        name = signal.Signals(signum).name
        if current_iter == position.start_iter:
            message = f'Stopped by {name} before the first iteration: nothing new to save.'
        else:
            if current_iter % opt['logger']['save_checkpoint_freq'] != 0:  # else the loop saved it already
                self.save_resume_point(position.epoch_of(current_iter), current_iter)
            message = (f"Stopped by {name} after iteration {current_iter}: saved its networks in "
                       f"{opt['path']['models']} and its training state {current_iter}.state.")
        if opt.get('rank', 0) == 0:
            get_root_logger().info(f'{message}\nResume (in {os.getcwd()}) with:\n  {resume_command()}\n')
        if opt.get('dist'):
            from torch import distributed as dist

            dist.barrier()
        sys.exit(128 + signum)

    def model_to_device(self, net):
        """BasicSR's, except that distributed CPU networks are wrapped without ``device_ids`` (BasicSR passes
        ``torch.cuda.current_device()``)."""
        from torch.nn.parallel import DistributedDataParallel

        if not (self.opt['dist'] and self.device.type == 'cpu'):
            return super().model_to_device(net)
        return DistributedDataParallel(net.to(self.device),
                                       find_unused_parameters=self.opt.get('find_unused_parameters', False))

    def validation(self, dataloader, current_iter, tb_logger, save_img=False):
        """BasicSR's, on the bare network: rank 0 validates alone, and DistributedDataParallel's forward
        broadcasts buffers, a collective the other processes never join (a hang at the final validation)."""
        wrapped = getattr(self, 'net_g', None)
        if not self.opt['dist'] or wrapped is None:
            return super().validation(dataloader, current_iter, tb_logger, save_img)
        self.net_g = self.get_bare_model(wrapped)
        try:
            return super().validation(dataloader, current_iter, tb_logger, save_img)
        finally:
            self.net_g = wrapped


    # The non-finite guard (``nonfinite``): around BasicSR's step, save and validation.
    def optimize_parameters(self, current_iter):
        return nonfinite.optimize_parameters(self, super().optimize_parameters, current_iter)

    def save(self, epoch, current_iter):
        return nonfinite.save(self, super().save, epoch, current_iter)

    def nondist_validation(self, dataloader, current_iter, tb_logger, save_img):
        return nonfinite.nondist_validation(self, super().nondist_validation, dataloader, current_iter, tb_logger,
                                            save_img)

    def get_current_visuals(self):
        return nonfinite.get_current_visuals(self, super().get_current_visuals)

    def _log_validation_metric_values(self, current_iter, dataset_name, tb_logger):
        return nonfinite.log_validation_metric_values(self, super()._log_validation_metric_values, current_iter,
                                                      dataset_name, tb_logger)

def optimizer_names():
    """The optimizers of ``torch.optim``, by class name."""
    return sorted(name for name, value in vars(torch.optim).items()
                  if isinstance(value, type) and issubclass(value, torch.optim.Optimizer)
                  and value is not torch.optim.Optimizer)


def resumable(model_class):
    """``model_class`` if it is a ``ResumableModel``, else a subclass of the same name that mixes it in."""
    if issubclass(model_class, ResumableModel):
        return model_class
    return type(model_class.__name__, (ResumableModel, model_class),
                {'__module__': model_class.__module__, '__doc__': model_class.__doc__})
