"""FastDeconv: a convolution that whitens its input patches (network deconvolution, Ye et al., ICLR 2020)."""
import contextlib
import math
import warnings
from collections import deque

import torch
from torch import nn
from torch.nn import functional as F

from deconv_basicsr.layers.fold import fold_whitening
from deconv_basicsr.layers.isqrt import METHODS, isqrt
from deconv_basicsr.layers.moments import PatchSampler, patch_moments, shrink_covariance
from deconv_basicsr.layers.sync import sync_active, synced_patch_moments


def _check_positive_int(name, value, minimum=1):
    values = value if isinstance(value, tuple) else (value, )
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in values):
        raise ValueError(f'FastDeconv: {name} must be an int (or pair of ints) >= {minimum}, got {value!r}')


def effective_block(in_channels, groups, block):
    """The channel block whose patches share one covariance, as the reference layer picks it.

    ``groups > 1``: ``in_channels // groups`` (one covariance per group); ``block > in_channels``:
    ``in_channels``; ``in_channels % block != 0``: ``gcd(block, in_channels)``.
    """
    if groups > 1:
        return in_channels // groups
    if block >= in_channels:
        return in_channels
    return math.gcd(block, in_channels)


def name_deconv_layers(network):
    """Set each FastDeconv layer's ``module_path`` to its path in ``network`` (``body.3.conv1``), which its
    warning names, and make the layers of ``network`` warn of non-finite statistics once together: the first
    layer to meet them (a NaN reaches every layer after it)."""
    reported = [False]
    for name, module in network.named_modules():
        if isinstance(module, FastDeconv):
            module.module_path, module._nonfinite_reported = name or None, reported


class FastDeconv(nn.Conv2d):
    """Convolution on whitened input patches, folded into the kernel (network deconvolution).

    Computes ``y = (X - mu) D W + b`` where the rows of ``X`` are the input patches (im2col) and
    ``D ~ (Cov + eps I)^(-1/2)`` by ``n_iter`` Newton–Schulz steps, without materialising the whitened
    patches: ``D`` is folded into the kernel and ``mu`` into the bias, then one ordinary ``conv2d`` runs on
    the raw input. Statistics come from patches on a grid of step ``sampling_stride * stride``. Gradients
    flow through the mean, the covariance and the inverse square root, as in batch normalisation.

    A drop-in for ``nn.Conv2d``: ``weight`` and ``bias`` have Conv2d's shapes, so conv weights load into it.

    Whitened vectors have ``d = kh * kw * block`` values. When ``in_channels > block`` (and ``groups == 1``),
    each patch's ``in_channels * kh * kw`` values are cut into ``G = in_channels / block`` vectors of length
    ``d``, which share one mean and one covariance and are stacked as extra samples. Membership follows the
    reference implementation: it is *interleaved* — flattening a patch channel-major (as ``unfold`` does),
    element ``f`` belongs to vector ``f % G`` — so a vector is not the patch of ``block`` consecutive
    channels, and which channels it covers changes with the kernel position. With
    ``groups > 1`` each group has its own statistics (``block = in_channels / groups``).

    Running statistics (``running_mean``, ``running_deconv``) are exponential moving averages of the batch
    mean and of ``D`` itself, starting at 0 and I; eval mode uses them only. ``num_batches_tracked``
    counts training steps and drives ``freeze``: when set, statistics are recomputed for ``freeze_iter + 1``
    of every ``10 * freeze_iter`` training steps and the running ones are used otherwise (a periodic
    refresh, as in the reference). All of it lives in ``state_dict``, so a resumed run continues exactly.
    The moving averages follow the last few dozen batches and the weights they met, and the eval output is
    sensitive to ``D``: recalibrate them before validating or exporting
    (``deconv_basicsr.layers.recalibrate_deconv_stats``; ``DeconvSRModel`` does it), see
    docs/evaluation-statistics.md.

    Statistics are computed in float32 (float64 for float64 inputs) with autocast disabled; only the folded
    kernel meets the input's dtype.

    Synchronised statistics (``sync_stats=True``): when torch.distributed is initialised with more than one
    process, the training statistics are those of the patches of all processes' inputs together (count,
    mean and centred second moments are all-reduced, with gradient), as SyncBatchNorm does for BatchNorm.
    Every process must then run the layer's training forward (and backward) in step. See
    ``deconv_basicsr.layers.sync`` for the sampling caveat of 1x1 kernels. Without torch.distributed it has
    no effect. Recalibration (``recalibrate_deconv_stats``) stays per process.

    ``load_state_dict`` also takes the reference layer's checkpoints (``groups == 1``): statistics of shape
    ``(d,)`` and ``(d, d)``, and no ``num_batches_tracked`` (it starts at 0).

    Non-finite batch statistics (NaN or inf in the layer's input, or overflow) never reach the running
    statistics: that training step leaves ``running_mean`` and ``running_deconv`` unchanged. The first such
    step raises a ``RuntimeWarning`` that names the layer (by ``module_path`` when set: its path in the
    network) and the step, once: later ones are not reported, by this layer or, once ``name_deconv_layers``
    has named a network's layers, by any layer of that network (on CUDA the report comes at the layer's next
    training step, to avoid a device-to-host wait per layer). The step's own output is computed as usual
    (NaN in, NaN out), so the loss shows it too.

    Fast mode (``stats_period > 1``): the batch statistics are computed without gradient once every
    ``stats_period`` training steps and held, as constants, for the steps in between; the running ones are
    updated at each refresh only, with momentum ``1 - (1 - momentum)^stats_period`` (as if updated at every
    step with the held statistics). The whitening then acts as a preconditioner that is not differentiated
    through, and a training step costs about a convolution plus the (small) fold. The held statistics are
    not in ``state_dict`` (checkpoints stay those of the exact method): after ``load_state_dict`` the next
    step refreshes them, unless ``load_carried_state`` restores what ``carried_state`` returned (training
    states do, so a resumed run continues exactly). ``stats_period=1`` (the default) is the exact method.

    Steadier statistics (both off by default; docs/stability.md measures them at high learning rates):
    ``stats_batches > 1`` whitens with the moments of the current batch's samples pooled with those of the
    ``stats_batches - 1`` batches before it (each batch weighing alike; the earlier ones as constants, so the
    gradient flows through the current batch's), a larger sample at the cost of statistics a few steps old.
    ``shrinkage`` shrinks the covariance toward the scaled identity of its trace before the inverse square
    root, which bounds its condition number (``deconv_basicsr.layers.moments.shrink_covariance``); it applies
    wherever the layer whitens (recalibration included). The pooled moments are carried like the fast mode's
    held statistics (``carried_state``), so a resumed run continues exactly.

    In eval mode, the folded kernel is computed once and reused while the parameters hold the values it
    came from (compared by value, so optimizer steps and writes through ``.data``, as BasicSR's EMA does,
    refresh it) and the buffers have not been updated in place since (version counters: moving averages,
    ``load_state_dict``, recalibration); it is not cached when autograd needs a graph through the
    parameters. ``eval_kernel()`` returns it, and ``deconv_basicsr.fuse_deconv`` turns the layer into that
    plain convolution.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        kernel_size (int | tuple[int]): Kernel size.
        stride (int | tuple[int]): Stride. Default: 1.
        padding (int | tuple[int]): Zero padding. Default: 0.
        dilation (int | tuple[int]): Dilation. Default: 1.
        groups (int): Conv groups. Default: 1.
        bias (bool): Learnable bias. The mean correction is applied either way. Default: True.
        eps (float): Added to the covariance diagonal. Default: 1e-5.
        n_iter (int): Newton–Schulz iterations. Default: 5. (Ye et al. use 15 in a network's input layer,
            with ``freeze``; the archs' ``input_layer`` key.)
        momentum (float): Running statistics momentum. Default: 0.1.
        block (int): Channels per whitened block (see above). Default: 64.
        sampling_stride (int): Statistics use every ``sampling_stride * stride``-th position. Default: 3.
        freeze (bool): Refresh statistics periodically instead of every step. Default: False.
        freeze_iter (int): Refresh period unit (see above). Default: 100.
        isqrt_method (str): 'spectral' (one eigendecomposition) or 'newton_schulz' (the reference's matrix
            iteration). Both compute the same function and gradient for every ``n_iter`` (float32 covariances
            in float64 beyond 6 steps, see ``deconv_basicsr.layers.isqrt``); 'auto' picks 'spectral' on CPU
            and 'newton_schulz' elsewhere. Default: 'auto'.
        stats_period (int): 1: exact training statistics, every step. More: the fast mode (see above),
            statistics refreshed without gradient every ``stats_period`` steps. Default: 1.
        sync_stats (bool): Synchronise the training statistics across processes (see above). Default: False.
        stats_grad (bool): Differentiate through the batch statistics (mean, covariance, inverse square
            root), as the reference does. False treats them as constants in the backward pass (the
            whitening becomes a preconditioner; a diagnostic of the study). Default: True.
        stats_batches (int): Training statistics pooled over this batch and the ``stats_batches - 1`` before it
            (see above). Default: 1.
        shrinkage (float): In [0, 1): the covariance is whitened as ``(1 - shrinkage) Cov + shrinkage *
            tr(Cov) / d * I`` (see above). Default: 0.
    """

    def __init__(self,
                 in_channels,
                 out_channels,
                 kernel_size,
                 stride=1,
                 padding=0,
                 dilation=1,
                 groups=1,
                 bias=True,
                 eps=1e-5,
                 n_iter=5,
                 momentum=0.1,
                 block=64,
                 sampling_stride=3,
                 freeze=False,
                 freeze_iter=100,
                 isqrt_method='auto',
                 stats_period=1,
                 sync_stats=False,
                 stats_grad=True,
                 stats_batches=1,
                 shrinkage=0.0):
        for name, value, minimum in (('in_channels', in_channels, 1), ('out_channels', out_channels, 1),
                                     ('kernel_size', kernel_size, 1), ('stride', stride, 1),
                                     ('padding', padding, 0), ('dilation', dilation, 1), ('groups', groups, 1),
                                     ('n_iter', n_iter, 1), ('block', block, 1),
                                     ('sampling_stride', sampling_stride, 1), ('freeze_iter', freeze_iter, 1),
                                     ('stats_period', stats_period, 1), ('stats_batches', stats_batches, 1)):
            _check_positive_int(name, value, minimum)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f'FastDeconv: groups={groups} must divide in_channels={in_channels} and '
                             f'out_channels={out_channels}')
        if not (isinstance(eps, (int, float)) and eps > 0):
            raise ValueError(f'FastDeconv: eps must be a positive number, got {eps!r}')
        if not (isinstance(momentum, (int, float)) and 0 <= momentum <= 1):
            raise ValueError(f'FastDeconv: momentum must be in [0, 1], got {momentum!r}')
        if not (isinstance(shrinkage, (int, float)) and not isinstance(shrinkage, bool) and 0 <= shrinkage < 1):
            raise ValueError(f'FastDeconv: shrinkage must be in [0, 1), got {shrinkage!r}')
        if isqrt_method not in METHODS + ('auto', ):
            raise ValueError(f"FastDeconv: isqrt_method must be 'auto' or one of {METHODS}, got {isqrt_method!r}")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias)

        self.eps = float(eps)
        self.n_iter = n_iter
        self.momentum = float(momentum)
        self.block = effective_block(in_channels, groups, block)
        if groups == 1 and self.block < min(block, in_channels):
            warnings.warn(f'FastDeconv: block={block} does not divide in_channels={in_channels}; using '
                          f'gcd = {self.block}, which whitens far fewer channels together', stacklevel=2)
        self.sampling_stride = sampling_stride
        self.freeze = bool(freeze)
        self.freeze_iter = freeze_iter
        self.isqrt_method = isqrt_method
        self.stats_period = stats_period
        self.sync_stats = bool(sync_stats)
        self.stats_grad = bool(stats_grad)
        self.stats_batches = stats_batches
        self.shrinkage = float(shrinkage)
        self.module_path = None  # the layer's path in its network, named in warnings (name_deconv_layers)
        self._nonfinite_pending = None  # CUDA: (host copy of [non-finite flag, step], event) to report
        self._nonfinite_reported = [False]  # report non-finite statistics once (shared: name_deconv_layers)
        self._held = None  # fast mode: (mean, deconv) of the last refresh, and steps since
        self._held_age = 0
        self._pooled = deque(maxlen=stats_batches - 1)  # stats_batches: (mean, cov) of the previous batches
        self._eval_cache = None  # eval mode: (inputs it was folded from, (weight, bias))
        self._records = None  # within recording(): where batch statistics go

        self.num_features = self.kernel_size[0] * self.kernel_size[1] * self.block
        self.register_buffer('running_mean', torch.zeros(groups, self.num_features))
        self.register_buffer('running_deconv', torch.eye(self.num_features).repeat(groups, 1, 1))
        self.register_buffer('num_batches_tracked', torch.tensor(0, dtype=torch.long))

    def reset_running_stats(self):
        self.running_mean.zero_()
        self.running_deconv.copy_(torch.eye(self.num_features).expand_as(self.running_deconv))
        self.num_batches_tracked.zero_()

    def extra_repr(self):
        s = super().extra_repr()
        return (s + f', block={self.block}, eps={self.eps}, n_iter={self.n_iter}, momentum={self.momentum}, '
                f'sampling_stride={self.sampling_stride}, freeze={self.freeze}, freeze_iter={self.freeze_iter}, '
                f'stats_period={self.stats_period}, stats_grad={self.stats_grad}, '
                f'stats_batches={self.stats_batches}, shrinkage={self.shrinkage}')

    # ---- statistics -------------------------------------------------------------------------------------

    def _sampler(self):
        step = self.sampling_stride * self.stride[0], self.sampling_stride * self.stride[1]
        return PatchSampler(self.kernel_size, self.dilation, self.padding, step, self.groups, self.num_features)

    def sample_patches(self, x):
        """Sampled patches, shape (groups, d, M): one column per (position, block) sample."""
        return self._sampler().gather(x)

    def isqrt_method_for(self, device):
        """The inverse square root method used on ``device`` ('auto' resolved)."""
        if self.isqrt_method != 'auto':
            return self.isqrt_method
        return 'spectral' if device.type == 'cpu' else 'newton_schulz'

    def batch_moments(self, x):
        """Mean (groups, d) and covariance plus ``eps I`` (groups, d, d) of the input's sampled patches."""
        return patch_moments(x, self._sampler(), self.eps)

    def whitening(self, cov):
        """The whitening matrix ``D = NS_n(cov)`` (n_iter Newton–Schulz steps, by ``isqrt_method``), of ``cov``
        shrunk toward ``tr(cov) / d * I`` by ``shrinkage``."""
        if self.shrinkage:
            cov = shrink_covariance(cov, self.shrinkage)
        return isqrt(cov, self.n_iter, self.isqrt_method_for(cov.device))

    @contextlib.contextmanager
    def recording(self, records):
        """Within: training-mode forwards whiten with the batch's own statistics, without gradient through
        them, and append ``(mean, cov, deconv)`` to ``records``; running statistics, the step counter and
        the fast mode's held statistics stay as they are. Recalibration (``recalibrate_deconv_stats``)."""
        self._records = records
        try:
            yield records
        finally:
            self._records = None

    def _batch_statistics(self, x):
        """Mean (groups, d) and whitening matrix (groups, d, d) of the input's sampled patches."""
        if self.sync_stats and sync_active():
            mean, cov = synced_patch_moments(x, self._sampler(), self.eps)
        else:
            mean, cov = self.batch_moments(x)
        if self.stats_batches > 1:
            mean, cov = self._pool(mean, cov)
        return mean, self.whitening(cov)

    def _pool(self, mean, cov):
        """The moments of this batch's samples and those of the ``stats_batches - 1`` batches before it, each
        batch weighing alike; the earlier batches' are constants (the gradient flows through this batch's)."""
        past = [(m, c) for m, c in self._pooled if m.dtype == mean.dtype and m.device == mean.device]
        self._pooled.append((mean.detach(), cov.detach()))
        if not past:
            return mean, cov
        means = torch.stack([mean] + [m for m, _ in past])
        pooled_mean = means.mean(0)
        shifts = means - pooled_mean
        pooled_cov = torch.stack([cov] + [c for _, c in past]).mean(0) + (
            shifts.unsqueeze(-1) * shifts.unsqueeze(-2)).mean(0)
        return pooled_mean, pooled_cov

    def _is_frozen(self):
        return self.freeze and int(self.num_batches_tracked) % (10 * self.freeze_iter) > self.freeze_iter

    def _eval_statistics(self):
        """The statistics eval mode whitens with."""
        return self.running_mean, self.running_deconv

    def _held_statistics_valid(self, stat_dtype, device):
        return (self._held is not None and self._held_age < self.stats_period and
                self._held[1].dtype == stat_dtype and self._held[1].device == device)

    def _statistics(self, x):
        """Batch statistics in training (updating the running ones), running statistics otherwise."""
        if not self.training:
            return self._eval_statistics()
        stat_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
        if self._records is not None:
            with torch.autocast(x.device.type, enabled=False), torch.no_grad():
                mean, cov = self.batch_moments(x.to(stat_dtype))
                deconv = self.whitening(cov)
            self._records.append((mean, cov, deconv))
            return mean, deconv
        frozen = self._is_frozen()
        self.num_batches_tracked.add_(1)
        if frozen:
            return self.running_mean, self.running_deconv
        fast = self.stats_period > 1
        if fast and self._held_statistics_valid(stat_dtype, x.device):
            self._held_age += 1
            return self._held
        # The fast mode treats statistics as constants: no graph, no backward through them.
        grad = torch.is_grad_enabled() and self.stats_grad and not fast
        with torch.autocast(x.device.type, enabled=False), torch.set_grad_enabled(grad):
            mean, deconv = self._batch_statistics(x.to(stat_dtype))
        if fast:
            self._held, self._held_age = (mean, deconv), 1
            # One update stands for the stats_period steps it is held: average over as many steps as the
            # exact mode does, not stats_period times as many.
            self._update_running_statistics(mean, deconv, 1 - (1 - self.momentum)**self.stats_period)
        else:
            self._update_running_statistics(mean, deconv)
        return mean, deconv

    def carried_state(self):
        """What training carries from step to step besides the buffers, or None when nothing: the fast mode's
        held statistics and how many steps they have served (``mean``, ``deconv``, ``age``), and the moments
        of the batches ``stats_batches`` pools (``pooled``)."""
        state = {}
        if self._held is not None:
            state.update(mean=self._held[0], deconv=self._held[1], age=self._held_age)
        if self._pooled:
            state['pooled'] = list(self._pooled)
        return state or None

    def load_carried_state(self, state):
        """Carry on from what ``carried_state`` returned (None: nothing held or pooled; the next step refreshes)."""
        state, device = state or {}, self.running_mean.device
        self._held, self._held_age = None, 0
        if 'mean' in state:
            self._held, self._held_age = (state['mean'].to(device), state['deconv'].to(device)), state['age']
        self._pooled.clear()
        self._pooled.extend((mean.to(device), cov.to(device)) for mean, cov in state.get('pooled', ()))

    @torch.no_grad()
    def _update_running_statistics(self, mean, deconv, momentum=None):
        """Moving averages of the batch statistics; a non-finite batch leaves them unchanged (and is reported).

        The choice is made on the device (``torch.where``), so skipping needs no device-to-host wait.
        """
        momentum = self.momentum if momentum is None else momentum
        finite = torch.isfinite(mean).all() & torch.isfinite(deconv).all()
        for running, batch in ((self.running_mean, mean), (self.running_deconv, deconv)):
            updated = running * (1 - momentum) + batch.to(running.dtype) * momentum
            running.copy_(torch.where(finite, updated, running))
        self._report_nonfinite(finite)

    def _report_nonfinite(self, finite):
        """Warn when ``finite`` is False: at once off CUDA, at the next training step on CUDA.

        On CUDA the flag is copied to pinned host memory without waiting and read one step later, after an
        event that has long completed; reading it now would stall the launch queue at every layer.
        """
        pending, self._nonfinite_pending = self._nonfinite_pending, None
        if pending is not None:
            flags, event = pending
            event.synchronize()
            self._warn_if_nonfinite(flags)
        flags = torch.stack([(~finite).long(), self.num_batches_tracked.to(finite.device)])
        if flags.is_cuda:
            event = torch.cuda.Event()
            self._nonfinite_pending = flags.to('cpu', non_blocking=True), event
            event.record()
        else:
            self._warn_if_nonfinite(flags)

    def __getstate__(self):
        # Copies and pickles drop a pending report: a CUDA event cannot be copied.
        state = dict(super().__getstate__())
        state['_nonfinite_pending'] = None
        return state

    def _warn_if_nonfinite(self, flags):
        nonfinite, step = flags.tolist()
        if nonfinite and not self._nonfinite_reported[0]:
            self._nonfinite_reported[0] = True
            name = (f'FastDeconv {self.module_path}' if self.module_path else
                    f'FastDeconv({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size})')
            warnings.warn(
                f'{name}: batch statistics of training step {step} are not finite (NaN or inf in its input, or '
                'overflow); the running statistics were left unchanged, as they are at any later such step, '
                'which is not reported again', RuntimeWarning)

    # ---- folding ----------------------------------------------------------------------------------------

    def fold(self, mean, deconv):
        """Kernel and bias of the plain convolution equal to whitening with ``(mean, deconv)`` then this conv."""
        return fold_whitening(self.weight, self.bias, mean, deconv)

    def _fold_inputs(self):
        """What the eval-mode kernel is computed from: parameters (by value) and buffers (by version).

        Parameters are compared by value: BasicSR's EMA writes them through ``.data``, which no version
        counter sees. Buffers (a d x d matrix each, ten times the kernel's size) are compared by identity and
        version counter, which every in-place update bumps (moving averages, ``load_state_dict``,
        recalibration, the EMA's buffer copy); only a write through ``.data`` would go unnoticed.
        """
        params = [p for p in (self.weight, self.bias) if p is not None]
        return params, [(b, b._version) for b in self.buffers(recurse=False)]

    def _cached_eval_kernel(self):
        params, buffers = self._fold_inputs()
        if self._eval_cache is not None:
            cached_params, cached_buffers, kernel = self._eval_cache
            if (len(cached_buffers) == len(buffers)
                    and all(c is b and cv == v for (c, cv), (b, v) in zip(cached_buffers, buffers))
                    and len(cached_params) == len(params) and all(
                        c.device == p.device and c.dtype == p.dtype and c.shape == p.shape and torch.equal(c, p)
                        for c, p in zip(cached_params, params))):
                return kernel
        with torch.no_grad():
            kernel = self.eval_kernel()
            self._eval_cache = [p.clone() for p in params], buffers, kernel
        return kernel

    def eval_kernel(self):
        """Kernel and bias of the plain convolution this layer computes in eval mode, in the buffers' dtype."""
        mean, deconv = self._eval_statistics()
        with torch.autocast(self.weight.device.type, enabled=False):
            return self.fold(mean, deconv)

    def train(self, mode=True):
        if mode:  # the cache is only used in eval mode; repeated eval() calls keep it
            self._eval_cache = None
        return super().train(mode)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        self._held = self._eval_cache = None
        self._pooled.clear()
        if self.groups == 1 and state_dict.get(prefix + 'running_mean', self.running_mean).dim() == 1:
            # The reference layer's checkpoint: statistics of shape (d,) and (d, d), no step counter.
            state_dict[prefix + 'running_mean'] = state_dict[prefix + 'running_mean'].unsqueeze(0)
            if prefix + 'running_deconv' in state_dict:
                state_dict[prefix + 'running_deconv'] = state_dict[prefix + 'running_deconv'].unsqueeze(0)
            state_dict.setdefault(prefix + 'num_batches_tracked', torch.zeros_like(self.num_batches_tracked))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x):
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f'FastDeconv expects input (N, {self.in_channels}, H, W), got {tuple(x.shape)}')
        if not self.training and not (torch.is_grad_enabled() and any(p.requires_grad for p in self.parameters())):
            # Eval without a graph to build: the kernel only changes when parameters or buffers do.
            weight, bias = self._cached_eval_kernel()
        else:
            mean, deconv = self._statistics(x)
            with torch.autocast(x.device.type, enabled=False):
                weight, bias = self.fold(mean, deconv)
        weight_dtype = x.dtype if not torch.is_autocast_enabled(x.device.type) else weight.dtype
        return F.conv2d(x, weight.to(weight_dtype), bias.to(weight_dtype), self.stride, self.padding, self.dilation,
                        self.groups)
