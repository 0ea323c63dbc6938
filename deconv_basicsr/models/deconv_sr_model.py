import functools
from collections import deque

import torch
from basicsr.models.sr_model import SRModel
from basicsr.utils import get_root_logger
from basicsr.utils.registry import MODEL_REGISTRY

from deconv_basicsr.layers.fast_deconv import FastDeconv
from deconv_basicsr.layers.recalibrate import AVERAGES, recalibrate_deconv_stats
from deconv_basicsr.training.resumable import ResumableModel

#: Defaults of the ``val`` options that control recalibration (see ``DeconvSRModel``).
RECALIBRATE_DEFAULTS = {'recalibrate_batches': 16, 'recalibrate_fixed': False, 'recalibrate_average': 'deconv',
                        'validate_running_stats': False}
#: Defaults of the ``train`` options for steadier training at high learning rates (see ``DeconvSRModel``).
OPTIMIZE_DEFAULTS = {'grad_clip_norm': None, 'deconv_lr_scale': 1.0}
#: Suffix of the dataset name under which a validation on the moving averages is logged.
RUNNING_STATS_SUFFIX = '_running'


@MODEL_REGISTRY.register()
class DeconvSRModel(ResumableModel, SRModel):
    """SRModel that recalibrates FastDeconv running statistics before each validation and each save.

    It is a ``ResumableModel`` (``deconv_basicsr.training``): exactly resumable training states, Ctrl-C,
    any ``torch.optim`` optimizer, in any pipeline, BasicSR's own ``train.py`` included.

    In eval mode a FastDeconv layer whitens with running averages of batch statistics, an exponential
    average dominated by the last dozen training batches and gathered while the weights moved. The eval
    output is sensitive to the whitening matrix (in SRCNN the whole image passes through it), so validation
    PSNR swings with whichever batches came last. This model recomputes the running statistics of ``net_g``
    (and of ``net_g_ema``) from ``N`` training batches pushed through the current weights
    (``deconv_basicsr.layers.recalibrate.recalibrate_deconv_stats``) before validating or saving, as
    "precise BN" does for batch normalisation: by default the last 16 batches it trained on, averaging their
    whitening matrices (docs/evaluation-statistics.md has the measurements behind these defaults). Saved
    checkpoints (``params`` and ``params_ema``) hold the statistics that validation used. Training is unchanged
    (unless ``freeze`` is on: its frozen steps whiten with the running statistics, recalibrated ones included).

    Options (YAML), with their defaults::

        model_type: DeconvSRModel
        val:
          recalibrate_batches: 16        # N; 0 keeps the moving averages, as the reference does
          recalibrate_fixed: false       # true: the first N training batches, the same set every time
          recalibrate_average: deconv    # mean of the batch whitening matrices (what the moving average
                                         # averages); cov: whitening matrix of the pooled covariance
          validate_running_stats: false  # true: first validate on the moving averages, as a network
                                         # without recalibration would be, logged as '<dataset>_running'
        train:
          grad_clip_norm: ~              # a number: clip the gradients' total norm to it before each step
          deconv_lr_scale: 1.0           # FastDeconv layers' parameters learn at this times optim_g.lr

    With ``validate_running_stats``, each validation first runs on the moving averages the layers hold (those of
    the reference layer, which never recalibrates), and its metrics are logged under the dataset's name plus
    ``_running``; then the statistics are recalibrated and the validation runs as usual. The moving averages
    carry a trace of the previous recalibration, weighted by ``(1 - momentum)`` to the power of the steps since
    (0.9^100, about 3e-5, for validations 100 iterations apart). Training is unchanged by it.

    The cached batches are LQ tensors of the training loader, kept on the model's device
    (``N * batch * 3 * h * w`` values), and saved in training states: a resumed run recalibrates on the
    batches the uninterrupted run would have used. Until a batch is cached (a test run) nothing is
    recalibrated: the checkpoint's statistics are used. Networks without FastDeconv layers
    behave as with SRModel.
    """

    @staticmethod
    def check_options(opt):
        """Check the model's own options (``val`` and ``train`` above); returns them with their defaults, in
        one dict. Raises ValueError."""
        given, given_train = opt.get('val') or {}, opt.get('train') or {}
        options = {key: given.get(key, default) for key, default in RECALIBRATE_DEFAULTS.items()}
        options.update({key: given_train.get(key, default) for key, default in OPTIMIZE_DEFAULTS.items()})
        clip, scale = options['grad_clip_norm'], options['deconv_lr_scale']
        if clip is not None and not _positive(clip):
            raise ValueError(f'train.grad_clip_norm: DeconvSRModel takes a number > 0 or null, got {clip!r}')
        if not _positive(scale):
            raise ValueError(f'train.deconv_lr_scale: DeconvSRModel takes a number > 0, got {scale!r}')
        count, average = options['recalibrate_batches'], options['recalibrate_average']
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise ValueError(f'val.recalibrate_batches: DeconvSRModel takes an int >= 0, got {count!r}')
        if average not in AVERAGES:
            raise ValueError(f'val.recalibrate_average: DeconvSRModel takes one of {AVERAGES}, got {average!r}')
        if not isinstance(options['validate_running_stats'], bool):
            raise ValueError('val.validate_running_stats: DeconvSRModel takes true or false, got '
                             f"{options['validate_running_stats']!r}")
        return options

    def __init__(self, opt):
        super().__init__(opt)
        options = self.check_options(opt)
        self.recalibrate_batches = options['recalibrate_batches']
        self.recalibrate_fixed = bool(options['recalibrate_fixed'])
        self.recalibrate_average = options['recalibrate_average']
        self.validate_running_stats = options['validate_running_stats']
        self._cached_lq = deque(maxlen=max(self.recalibrate_batches, 1))
        self._steps = 0
        self._recalibrated_at = None
        self._moving_averages = None  # net_g's FastDeconv statistics before the last recalibration

    def setup_optimizers(self):
        """SRModel's, with FastDeconv layers' parameters in a group of their own at ``deconv_lr_scale`` times the
        rate, and the gradients' total norm clipped to ``grad_clip_norm`` before each step."""
        options = self.check_options(self.opt)
        scale, clip = options['deconv_lr_scale'], options['grad_clip_norm']
        if scale == 1:
            super().setup_optimizers()
        else:
            optim_opt = dict(self.opt['train']['optim_g'])
            optim_type, lr = optim_opt.pop('type'), optim_opt.pop('lr')
            deconv = {id(p) for m in self.net_g.modules() if isinstance(m, FastDeconv) for p in m.parameters()}
            params = [p for p in self.net_g.parameters() if p.requires_grad]
            groups = [{'params': [p for p in params if id(p) not in deconv]},
                      {'params': [p for p in params if id(p) in deconv], 'lr': lr * scale}]
            self.optimizer_g = self.get_optimizer(optim_type, [g for g in groups if g['params']], lr, **optim_opt)
            self.optimizers.append(self.optimizer_g)
        if clip is not None:
            self.optimizer_g.register_step_pre_hook(functools.partial(_clip_gradients, max_norm=clip))

    def optimize_parameters(self, current_iter):
        if self.recalibrate_batches and not (self.recalibrate_fixed and
                                             len(self._cached_lq) == self.recalibrate_batches):
            # A copy: a loader may reuse its buffers.
            self._cached_lq.append(self.lq.detach().clone())
        self._steps += 1
        super().optimize_parameters(current_iter)

    def recalibrate(self):
        """Recompute FastDeconv statistics of net_g (and net_g_ema) on the cached training batches.

        Does nothing when disabled, when no batch is cached, or when no training step happened since the
        last recalibration. Returns whether it recalibrated. With ``validate_running_stats``, the moving
        averages of net_g it replaces are kept for the next validation (BasicSR saves, hence recalibrates,
        before it validates).
        """
        if not self.recalibrate_batches or not self._cached_lq or self._recalibrated_at == self._steps:
            return False
        batches = list(self._cached_lq)
        net = self.get_bare_model(self.net_g)
        if self.validate_running_stats:
            self._moving_averages = _deconv_statistics(net)
        nets = [net] + ([self.net_g_ema] if hasattr(self, 'net_g_ema') else [])
        if any([recalibrate_deconv_stats(net, batches, average=self.recalibrate_average) for net in nets]):
            get_root_logger().info(f'Recalibrated FastDeconv statistics on {len(batches)} training batches.')
        self._recalibrated_at = self._steps
        return True

    def validation(self, dataloader, current_iter, tb_logger, save_img=False):
        net = self.get_bare_model(self.net_g)
        if self.validate_running_stats and _deconv_statistics(net):
            self.recalibrate()  # keeps the moving averages it replaces, if it has not done so at this step
            recalibrated = _deconv_statistics(net)
            dataset_opt = dataloader.dataset.opt
            name = dataset_opt['name']
            dataset_opt['name'] = name + RUNNING_STATS_SUFFIX
            try:
                _load_deconv_statistics(net, self._moving_averages or recalibrated)
                super().validation(dataloader, current_iter, tb_logger, save_img=False)
            finally:
                dataset_opt['name'] = name
                _load_deconv_statistics(net, recalibrated)
        self.recalibrate()
        super().validation(dataloader, current_iter, tb_logger, save_img)

    def save(self, epoch, current_iter):
        self.recalibrate()
        super().save(epoch, current_iter)

    def save_resume_point(self, epoch, current_iter):
        """Save as ``save`` does, without recalibrating: a run stopped between periodic saves (Ctrl-C) resumes
        from here, and must continue with the statistics the uninterrupted run had at this iteration."""
        super().save(epoch, current_iter)

    def local_training_state(self):
        """Training states also hold the cached batches, so a resumed run recalibrates on the same ones."""
        state = super().local_training_state()
        state['recalibration_batches'] = [batch.cpu() for batch in self._cached_lq]
        return state

    def load_local_training_state(self, state):
        super().load_local_training_state(state)
        self._cached_lq.clear()
        self._cached_lq.extend(batch.to(self.device) for batch in state.get('recalibration_batches', []))


def _clip_gradients(optimizer, args, kwargs, max_norm):
    """Step pre-hook: clip the total norm of the gradients of ``optimizer``'s parameters to ``max_norm``."""
    torch.nn.utils.clip_grad_norm_([p for group in optimizer.param_groups for p in group['params']], max_norm)


def _positive(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def _deconv_statistics(net):
    """Copies of the running statistics of every FastDeconv layer of ``net``: ``{buffer name: tensor}``."""
    return {f'{name}.{key}': getattr(module, key).clone() for name, module in net.named_modules()
            if isinstance(module, FastDeconv) for key in ('running_mean', 'running_deconv')}


def _load_deconv_statistics(net, statistics):
    buffers = dict(net.named_buffers())
    for key, value in statistics.items():
        buffers[key].copy_(value)
