"""The non-finite guard: a diverging run stops, never saves a non-finite network and reports no PSNR of NaN.

BasicSR 1.4.2 takes every optimizer step, whatever its loss and gradients: once they are NaN or inf, the
weights follow, the run ends with exit code 0, ``net_g_latest.pth`` holds NaN, and validation prints the
PSNR of whatever NaN became in ``uint8``. The non-finite guard, on by default in training:

* checks every optimizer step's gradients (a step pre-hook on each of the model's optimizers): a step with a
  NaN or inf gradient is skipped (its gradients are dropped, so the weights and the optimizer's state stay
  as they were); an iteration whose loss is not finite counts too; each such iteration is logged;
* after ``stop_after`` such iterations in a row, stops the run with exit code ``EXIT_CODE`` (3), logging the
  iterations, where the values first went non-finite (the training batch itself; else the first module of
  ``net_g``, by its path, whose output is not finite although its input is, found by running the batch
  again; else the loss; else the gradients) and what to try;
* never saves a network that holds a non-finite value (parameter or buffer, ``net_g`` and ``net_g_ema``):
  the save is refused and the run stops (exit code 3), so the latest checkpoint and training state on disk
  are the last finite ones;
* names the FastDeconv layers of ``net_g`` by their paths (``body.3.conv1``), which their warnings name.

In training and testing alike, a validation whose network output is not finite on some image says so, in
place of the metrics it would have logged.

Options (YAML), with their defaults::

    train:
      nonfinite:
        enabled: true   # false: BasicSR's behaviour
        stop_after: 3   # non-finite iterations in a row that stop the run

Under torch.distributed the processes agree on every decision (an all-reduce of the flag), so they skip,
stop and refuse together. ``ResumableModel`` (``resumable``) runs its ``optimize_parameters``, ``save``,
``nondist_validation``, ``get_current_visuals`` and ``_log_validation_metric_values`` through the functions
of the same names here, so the guard is active wherever the project's features are: the project's pipelines
and any run of ``DeconvSRModel``. ``check_options`` runs at start-up (``checks``).
"""
import difflib
import math
import os
import sys
from os import path as osp


#: The exit code of a run stopped by the guard.
EXIT_CODE = 3
#: The ``train.nonfinite`` options and their defaults.
DEFAULTS = {'enabled': True, 'stop_after': 3}
_GUARD = '_nonfinite_guard'
_VALIDATION = '_nonfinite_validation'


def check_options(opt):
    """The ``train.nonfinite`` options of ``opt`` with their defaults; raises ValueError naming the key."""
    given = (opt.get('train') or {}).get('nonfinite')
    given = {} if given is None else given
    if not isinstance(given, dict):
        raise ValueError(f'train.nonfinite: takes keys {list(DEFAULTS)}, got {given!r}')
    for key in given:
        if key not in DEFAULTS:
            close = difflib.get_close_matches(str(key), list(DEFAULTS), n=1)
            raise ValueError(f'train.nonfinite.{key}: not an option of the non-finite guard '
                             f"({', '.join(DEFAULTS)}){f'; did you mean {close[0]}?' if close else ''}")
    options = {**DEFAULTS, **given}
    if not isinstance(options['enabled'], bool):
        raise ValueError(f"train.nonfinite.enabled: takes true or false, got {options['enabled']!r}")
    stop_after = options['stop_after']
    if not isinstance(stop_after, int) or isinstance(stop_after, bool) or stop_after < 1:
        raise ValueError(f'train.nonfinite.stop_after: takes an int >= 1, got {stop_after!r}')
    return options


def _finite(tensors):
    import torch

    return all(bool(torch.isfinite(t).all()) for t in tensors if torch.is_tensor(t) and t.is_floating_point())


def _tensors(value):
    import torch

    if torch.is_tensor(value):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for item in value for t in _tensors(item)]
    if isinstance(value, dict):
        return [t for item in value.values() for t in _tensors(item)]
    return []


def _agreed(model, flag):
    """``flag`` of any process, so that all decide alike."""
    from deconv_basicsr.training.distributed import max_over_processes

    return bool(max_over_processes(int(bool(flag)), model.opt, model.device))


def _networks(model):
    from torch import nn

    return {name: model.get_bare_model(value) for name, value in vars(model).items()
            if name in ('net_g', 'net_g_ema') and isinstance(value, nn.Module)}


def first_nonfinite_module(net, inputs):
    """The path of the first module of ``net`` (in execution order) whose output is not finite although its
    input is, running ``inputs`` through it without gradient; None when none is. Buffers may change."""
    import torch

    found = []

    def hook(name):
        def check(module, args, output):
            if not found and not _finite(_tensors(output)) and _finite(_tensors(args)):
                found.append(f'{name} ({type(module).__name__})')
        return check

    handles = [module.register_forward_hook(hook(name)) for name, module in net.named_modules() if name]
    try:
        with torch.no_grad():
            output = net(inputs)
    finally:
        for handle in handles:
            handle.remove()
    if not found and not _finite(_tensors(output)):
        found.append(f'the network itself ({type(net).__name__}), outside its modules')
    return found[0] if found else None


class Guard:
    """The non-finite guard of one training model (see the module).

    Args:
        model (BaseModel): The model; its optimizers are hooked by ``hook_optimizers``.
        stop_after (int): Non-finite iterations in a row that stop the run.
    """

    def __init__(self, model, stop_after):
        self.model, self.stop_after = model, stop_after
        self.in_a_row, self.first_iter = 0, None
        self.skipped = []  # names of the parameters whose gradients were not finite, this iteration
        self.stepped = 0  # parameters with a gradient in the steps skipped this iteration
        self._hooked = set()
        from deconv_basicsr.layers.fast_deconv import name_deconv_layers

        for net in _networks(model).values():
            name_deconv_layers(net)

    def hook_optimizers(self):
        """Put the step pre-hook on every optimizer of the model that does not have it yet."""
        for optimizer in self.model.optimizers:
            if id(optimizer) not in self._hooked:
                optimizer.register_step_pre_hook(self._before_step)
                self._hooked.add(id(optimizer))

    def _before_step(self, optimizer, args, kwargs):
        """Drop the gradients of a step with a non-finite one: the optimizer skips parameters without one."""
        params = [p for group in optimizer.param_groups for p in group['params'] if p.grad is not None]
        if not _agreed(self.model, not _finite([p.grad for p in params])):
            return
        names = {id(p): name for net in _networks(self.model).values() for name, p in net.named_parameters()}
        self.skipped += [names.get(id(p), 'a parameter') for p in params if not _finite([p.grad])]
        self.stepped += len(params)
        for p in params:
            p.grad = None

    def optimize(self, optimize_parameters, current_iter):
        """Run one iteration's ``optimize_parameters``; count, report, and stop after ``stop_after`` in a row."""
        from basicsr.utils import get_root_logger

        self.skipped, self.stepped = [], 0
        self.hook_optimizers()
        optimize_parameters(current_iter)
        losses = getattr(self.model, 'log_dict', None) or {}
        bad_losses = {key: value for key, value in losses.items() if not math.isfinite(value)}
        if not _agreed(self.model, self.skipped or bad_losses):
            self.in_a_row = 0
            return
        self.in_a_row += 1
        if self.in_a_row == 1:
            self.first_iter = current_iter
        what = []
        if bad_losses:
            what.append('loss (' + ', '.join(f'{key}: {value}' for key, value in bad_losses.items()) + ')')
        if self.skipped:
            what.append(f'gradients ({len(self.skipped)} of {self.stepped} parameters)')
        skipped = '; the update was skipped' if self.skipped else ''
        message = f"Iteration {current_iter}: non-finite {' and '.join(what)}{skipped}"
        if self.in_a_row >= self.stop_after:
            self.stop(current_iter, message)
        if self.model.opt.get('rank', 0) == 0:
            get_root_logger().warning(f'{message} ({self.in_a_row} in a row; the run stops at {self.stop_after} in '
                                      'a row, train.nonfinite.stop_after).')

    def _where(self):
        """Where the values first went non-finite, at the current iteration (see the module)."""
        model = self.model
        batch = {key: getattr(model, key) for key in ('lq', 'gt') if hasattr(model, key)}
        bad = [key for key, value in batch.items() if not _finite([value])]
        if bad:
            return f"in the training batch itself ({', '.join(bad)} holds NaN or inf): check the data"
        net = _networks(model).get('net_g')
        if net is not None and 'lq' in batch:
            module = first_nonfinite_module(net, batch['lq'])
            if module is not None:
                return f'in net_g at {module}: the first module whose output is not finite, its input being finite'
        losses = getattr(model, 'log_dict', None) or {}
        if not all(math.isfinite(value) for value in losses.values()):
            return 'in the loss (the network output is finite)'
        if self.skipped:
            return (f'in the backward pass (the loss is finite): {len(self.skipped)} parameters, first from the '
                    f'output: {self.skipped[-1]}')
        return 'nowhere this iteration'

    def _kept(self):
        """The last training state on disk and its checkpoint, in words."""
        from deconv_basicsr.compat.resume import latest_training_state

        state = latest_training_state(self.model.opt)
        if state is None:
            return 'No checkpoint was saved (logger.save_checkpoint_freq), and none is saved now.'
        last = osp.basename(state).split('.')[0]
        return (f"The last checkpoint, {osp.join(self.model.opt['path']['models'], f'net_g_{last}.pth')}, and its "
                f"training state {last}.state are finite and kept; nothing was saved after them.")

    def _hint(self):
        lr = (self.model.opt['train'].get('optim_g') or {}).get('lr')
        now = f' (train.optim_g.lr: {lr:g})' if isinstance(lr, (int, float)) else ''
        return (f'Hint: train with a lower learning rate{now} or a warmup (train.warmup_iter), or check the '
                'training data; train.nonfinite.stop_after sets how many non-finite iterations in a row stop a run.')

    def stop(self, current_iter, message):
        """Log what happened and where, and exit with ``EXIT_CODE``; nothing of these iterations is saved."""
        from basicsr.utils import get_root_logger

        where = self._where()  # every process runs the batch again: layers may synchronise statistics
        if self.model.opt.get('rank', 0) == 0:
            first = '' if self.first_iter == current_iter else f' (iterations {self.first_iter} to {current_iter})'
            get_root_logger().error(
                f'{message}.\nStopped: {self.in_a_row} non-finite iterations in a row{first}. The values first went '
                f'non-finite {where}.\n{self._kept()}\n{self._hint()}')
        self._exit()

    def refuse_save(self, current_iter, tensors):
        """Log that the network is not saved (its non-finite ``tensors``), and exit with ``EXIT_CODE``."""
        from basicsr.utils import get_root_logger

        if self.model.opt.get('rank', 0) == 0:
            at = 'the latest network' if current_iter == -1 else f'iteration {current_iter}'
            get_root_logger().error(
                f'Not saving {at}: {len(tensors)} of its tensors are not finite (first: {tensors[0]}).\n'
                f'Stopped.\n{self._kept()}\n{self._hint()}')
        self._exit()

    def _exit(self):
        if self.model.opt.get('dist'):
            from torch import distributed as dist

            dist.barrier()
        sys.stdout.flush()
        sys.exit(EXIT_CODE)


def guard(model):
    """The model's guard (created at its first use), or None outside training or when it is disabled."""
    if not model.opt.get('is_train'):
        return None
    found = model.__dict__.get(_GUARD)
    if found is None:
        options = check_options(model.opt)
        if not options['enabled']:
            return None
        found = model.__dict__[_GUARD] = Guard(model, options['stop_after'])
    return found


def nonfinite_tensors(model):
    """Names (``net_g.body.0.conv1.weight``) of the model's network tensors that are not finite."""
    return [f'{label}.{key}' for label, net in _networks(model).items() for key, value in net.state_dict().items()
            if value.is_floating_point() and not _finite([value])]


def optimize_parameters(model, original, current_iter):
    """``original(current_iter)`` (the model's own ``optimize_parameters``) under the model's guard."""
    found = guard(model)
    if found is None:
        return original(current_iter)
    return found.optimize(original, current_iter)


def save(model, original, epoch, current_iter):
    """``original(epoch, current_iter)``, refused (the run stops) when the networks hold a non-finite value."""
    found = guard(model)
    if found is not None:
        tensors = nonfinite_tensors(model)
        if _agreed(model, tensors):
            found.refuse_save(current_iter, tensors or ['on another process'])
    return original(epoch, current_iter)


def nondist_validation(model, original, dataloader, current_iter, tb_logger, save_img):
    """``original(...)``, counting the images whose output is not finite (``get_current_visuals``)."""
    record = model.__dict__[_VALIDATION] = {'nonfinite': 0, 'images': 0}
    try:
        return original(dataloader, current_iter, tb_logger, save_img)
    finally:
        del model.__dict__[_VALIDATION]
        if record['nonfinite'] and model.opt['val'].get('metrics') is None:
            _log_nonfinite_validation(model, dataloader.dataset.opt['name'], record)


def get_current_visuals(model, original):
    visuals = original()
    record = model.__dict__.get(_VALIDATION)
    if record is not None and 'result' in visuals:
        record['images'] += 1
        record['nonfinite'] += not _finite([visuals['result']])
    return visuals


def _log_nonfinite_validation(model, dataset_name, record):
    from basicsr.utils import get_root_logger

    metrics = ', '.join(model.opt['val'].get('metrics') or {}) or 'images'
    get_root_logger().warning(
        f"Validation {dataset_name}: the network's output is not finite (NaN or inf) on {record['nonfinite']} of "
        f"{record['images']} images: no {metrics} (its values would be those of whatever NaN becomes in an image).")


def log_validation_metric_values(model, original, current_iter, dataset_name, tb_logger):
    """A validation with non-finite outputs says so in place of its metrics; else ``original(...)``."""
    record = model.__dict__.get(_VALIDATION)
    if record is not None and record['nonfinite']:
        return _log_nonfinite_validation(model, dataset_name, record)
    return original(current_iter, dataset_name, tb_logger)
