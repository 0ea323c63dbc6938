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
4. ``init_dist``, ``model_to_device`` and ``validation``: distributed training on the CPU (``torchrun ...
   --launcher pytorch`` with ``num_gpu: 0`` or without CUDA). BasicSR calls ``torch.cuda.set_device`` and
   uses NCCL (``init_dist``), and wraps the network in DistributedDataParallel with ``device_ids`` of the
   current CUDA device (``BaseModel.model_to_device``): both fail without a GPU. On the CPU, Gloo is used
   and no device is named; GPU runs are started as BasicSR starts them. On any device, validation (rank 0
   only, in SRModel) ran ``net_g`` through DistributedDataParallel when there is no EMA network, whose
   forward broadcasts buffers: a collective the other processes never join (a crash or a hang at the
   final validation). Validation now runs the bare network.
5. Exact resume (``build_dataloader``, ``save_training_state``, ``resume_training``): a resumed run did
   not continue the run it resumes. BasicSR restarts the interrupted epoch from its first batch, seeds
   its random generators afresh (so crops and flips differ), re-seeds every data-loader worker alike at
   each epoch, and saves no random state. Training samples now draw their augmentation randomness from
   per-sample seeds (``deconv_basicsr.determinism``), a resumed epoch starts where the saved run stopped,
   and training states hold every process's random generators.
6. Start-up checks (``load_resume_state``, ``make_exp_dirs``, ``build_model``): BasicSR reports a missing
   dataset path or a bad network option deep inside dataset or model construction. Missing paths now fail
   first thing in the training and test pipelines, naming their option key
   (``deconv_basicsr.data.check_option_paths``); an arch that rejects its options fails naming
   ``network_g.<key>``.
7. ``imfrombytes`` and ``FileClient.get``: an undecodable image (corrupt, truncated) made
   ``imfrombytes`` return None and the dataset crash later on ``None.astype``; a missing LMDB key gave
   ``np.frombuffer(None)``. Both now raise errors naming the file, or the LMDB and its key.

``apply()`` installs all of them; it is idempotent and is called when ``deconv_basicsr`` is imported.
BasicSR's modules bind some of the replaced functions by name at import time (``basicsr.train`` and
``basicsr.test`` import ``build_dataloader``, ``build_model``, ``make_exp_dirs``): those names are replaced
too.
This module imports BasicSR (and torch) only inside the functions, so that the stand-in can be installed
before BasicSR is first imported.
"""
import argparse
import functools
import importlib.util
import os.path as osp
import re
import sys
import types
import warnings

#: Name of the torchvision module that BasicSR 1.4.2 imports and torchvision >= 0.17 no longer has.
FUNCTIONAL_TENSOR = 'torchvision.transforms.functional_tensor'

# Marks the functions installed here, so that no patch is applied twice.
_PATCH_MARK = '_deconv_basicsr_patch'

# Where the resume state loaded by ``load_resume_state`` stopped ({'epoch', 'iter'}), for the training
# data loader that ``train_pipeline`` builds next (``build_dataloader``).
_resumed_at = {}


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

    It is the first thing ``train_pipeline`` does after parsing the options, so it also runs the start-up
    check of dataset and checkpoint paths (``check_startup_options``), and it records where the resume
    state stopped, for the training data loader (``build_dataloader``).

    ``torch.load`` keeps its default: since torch 2.6 that is ``weights_only=True``, which loads the
    states BasicSR writes (optimizer and scheduler state dicts, ``collections.Counter`` included).

    Args:
        opt (dict): Parsed options (``basicsr.utils.options.parse_options``).

    Returns:
        dict | None: The resume state, or None when there is nothing to resume from.
    """
    import torch
    from basicsr.utils import check_resume, scandir

    check_startup_options(opt)
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

    _resumed_at.clear()
    if resume_state_path is None:
        return None
    resume_state = torch.load(resume_state_path, map_location=resume_device(opt))
    check_resume(opt, resume_state['iter'])
    _resumed_at.update(epoch=resume_state.get('epoch'), iter=resume_state['iter'])
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


def check_startup_options(opt):
    """Start-up check of a pipeline's options: every dataset and checkpoint path exists.

    Raises ``deconv_basicsr.data.OptionPathError`` naming each missing path's option key
    (``datasets.train.dataroot_gt``, ``path.pretrain_network_g``, ...) and, where it can, the command that
    produces it. Runs before anything is created on disk.
    """
    from deconv_basicsr.data.checks import check_option_paths

    check_option_paths(opt)


def patch_make_exp_dirs():
    """Run ``check_startup_options`` first in the test pipeline.

    ``basicsr.test.test_pipeline`` (and BasicSR's ``test.py``) call ``make_exp_dirs`` right after parsing
    the options; the training pipeline checks in ``load_resume_state`` instead, which it always calls.
    """
    import basicsr.test
    import basicsr.utils
    from basicsr.utils import misc

    original = misc.make_exp_dirs
    if _is_patched(original):
        return

    @_mark
    @functools.wraps(original)
    def make_exp_dirs(opt):
        if not opt.get('is_train'):
            check_startup_options(opt)
        return original(opt)

    for module in (misc, basicsr.utils, basicsr.test):
        module.make_exp_dirs = make_exp_dirs


def _num_gpu_requested():
    """``num_gpu`` of the option file on the command line (``-opt``, then ``--force_yml num_gpu=N``).

    ``init_dist`` runs inside ``parse_options``, before the options are available; None when unknown.
    """
    import yaml

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument('-opt')
    parser.add_argument('--force_yml', nargs='+', default=[])
    args, _ = parser.parse_known_args()
    num_gpu = None
    if args.opt and osp.isfile(args.opt):
        with open(args.opt) as f:
            num_gpu = (yaml.safe_load(f) or {}).get('num_gpu')
    for entry in args.force_yml:
        key, _, value = entry.partition('=')
        if key.strip() == 'num_gpu':
            num_gpu = value.strip()
    if num_gpu == 'auto' or num_gpu is None:
        return None
    return int(num_gpu)


def uses_cuda():
    """Whether this run trains on CUDA: CUDA is available and the options do not ask for ``num_gpu: 0``."""
    import torch

    return torch.cuda.is_available() and _num_gpu_requested() != 0


def patch_init_dist():
    """Let ``init_dist`` start CPU processes: Gloo, and no ``torch.cuda.set_device``.

    BasicSR 1.4.2's ``_init_dist_pytorch`` calls ``torch.cuda.set_device(rank % torch.cuda.device_count())``
    (a ZeroDivisionError without GPUs) and ``parse_options`` calls ``init_dist(launcher)`` without
    ``dist_params``, so the backend is always NCCL, which has no CPU tensors. Without CUDA (or with
    ``num_gpu: 0``) the pytorch launcher now initialises Gloo; GPU runs go to BasicSR's code unchanged.
    The slurm launcher needs GPUs; on the CPU it raises an error that says so.
    """
    from basicsr.utils import dist_util, options

    original = dist_util.init_dist
    if _is_patched(original):
        return

    @_mark
    @functools.wraps(original)
    def init_dist(launcher, backend='nccl', **kwargs):
        import torch.multiprocessing as mp
        from torch import distributed as dist

        if uses_cuda():
            return original(launcher, backend, **kwargs)
        if launcher != 'pytorch':
            raise ValueError(f'--launcher {launcher} needs GPUs; on the CPU, start the processes with '
                             'torchrun ... --launcher pytorch')
        if mp.get_start_method(allow_none=True) is None:
            mp.set_start_method('spawn')
        dist.init_process_group(backend='gloo', **kwargs)

    dist_util.init_dist = init_dist
    options.init_dist = init_dist


def patch_model_to_device():
    """Wrap CPU networks in DistributedDataParallel without ``device_ids``.

    BasicSR 1.4.2 passes ``device_ids=[torch.cuda.current_device()]``, which fails without a GPU and is
    wrong for a CPU module anyway.
    """
    from basicsr.models.base_model import BaseModel
    from torch.nn.parallel import DistributedDataParallel

    original = BaseModel.model_to_device
    if _is_patched(original):
        return

    @_mark
    @functools.wraps(original)
    def model_to_device(self, net):
        if not (self.opt['dist'] and self.device.type == 'cpu'):
            return original(self, net)
        return DistributedDataParallel(
            net.to(self.device), find_unused_parameters=self.opt.get('find_unused_parameters', False))

    BaseModel.model_to_device = model_to_device


def patch_validation():
    """Validate with the bare ``net_g``, not its DistributedDataParallel wrapper.

    ``SRModel.dist_validation`` validates on rank 0 only; without ``net_g_ema`` it calls the wrapped
    ``net_g``, whose forward broadcasts the buffers (FastDeconv's and BatchNorm's statistics) from rank 0,
    a collective that the other processes do not join: they match it against their next training step or,
    after the last one, leave rank 0 waiting on a closed connection. The swap lasts for the validation call.
    """
    from basicsr.models.base_model import BaseModel

    original = BaseModel.validation
    if _is_patched(original):
        return

    @_mark
    @functools.wraps(original)
    def validation(self, dataloader, current_iter, tb_logger, save_img=False):
        wrapped = getattr(self, 'net_g', None)
        if not self.opt['dist'] or wrapped is None:
            return original(self, dataloader, current_iter, tb_logger, save_img)
        self.net_g = self.get_bare_model(wrapped)
        try:
            return original(self, dataloader, current_iter, tb_logger, save_img)
        finally:
            self.net_g = wrapped

    BaseModel.validation = validation


def patch_build_dataloader():
    """Training data loaders with per-sample seeds, resumed epochs that start where they stopped.

    BasicSR 1.4.2's training loader draws crops and flips from the process-wide generators (seeded once per
    start), re-seeds every worker identically at each epoch, and a resumed run restarts the interrupted
    epoch from its first batch: a resumed run never sees the data the uninterrupted one saw. For the train
    phase (with a sampler and a seed, as ``train_pipeline`` builds it), this loader

    * wraps sampler and dataset in ``SeededSampler`` / ``SeededDataset`` (``deconv_basicsr.determinism``):
      each sample's randomness comes from (seed, rank, epoch, position), whatever worker loads it;
    * after ``load_resume_state``, skips the samples of the resumed epoch that the saved run had used
      (``iter - epoch * batches per epoch`` batches);
    * draws its workers' base seeds from its own generator, not torch's global one (which a resumed run
      would otherwise consume once more, at the restarted epoch).

    Validation and test loaders are unchanged. Seeds differ from BasicSR's, so the augmentations of a run
    are not those an unpatched BasicSR would draw (they are as random).
    """
    import basicsr.data
    import basicsr.train
    import torch
    from basicsr.utils import get_root_logger
    from basicsr.utils.dist_util import get_dist_info

    from deconv_basicsr.determinism import SeededDataset, SeededSampler

    original = basicsr.data.build_dataloader
    if _is_patched(original):
        return

    @_mark
    @functools.wraps(original)
    def build_dataloader(dataset, dataset_opt, num_gpu=1, dist=False, sampler=None, seed=None):
        if dataset_opt['phase'] != 'train' or sampler is None or seed is None:
            return original(dataset, dataset_opt, num_gpu, dist, sampler, seed)
        rank, _ = get_dist_info()
        seeded_sampler = SeededSampler(sampler, seed, rank)
        loader = original(SeededDataset(dataset), dataset_opt, num_gpu, dist, seeded_sampler, seed)
        loader.generator = torch.Generator().manual_seed(seed + rank)
        if _resumed_at:
            epoch, iteration = _resumed_at.pop('epoch'), _resumed_at.pop('iter')
            done = iteration - epoch * len(loader) if epoch is not None else -1
            if 0 <= done <= len(loader):
                seeded_sampler.start_at(epoch, done * loader.batch_size)
            else:
                get_root_logger().warning(
                    f'Resuming at iter {iteration} of epoch {epoch}, which does not match {len(loader)} '
                    'batches per epoch: the epoch restarts from its first batch.')
        return loader

    basicsr.data.build_dataloader = build_dataloader
    basicsr.train.build_dataloader = build_dataloader


def patch_training_state_rng():
    """Save every process's random generators in training states; restore them on resume.

    BasicSR 1.4.2's ``save_training_state`` stores optimizers and schedulers only, and ``parse_options``
    re-seeds the generators at every start, so randomness outside the data (dropout, degradations drawn in
    ``feed_data``, ...) differs after a resume. The replacement gathers ``rng_state()`` from every process
    (a collective: BasicSR's ``save`` runs on all processes) and, on rank 0, writes BasicSR's state plus
    ``rng_states`` (one per rank). ``resume_training`` restores this rank's entry when the number of
    processes is the same.
    """
    import time

    import torch
    from basicsr.models.base_model import BaseModel
    from basicsr.utils import get_root_logger
    from torch import distributed as dist

    from deconv_basicsr.determinism import rng_state, set_rng_state

    original_resume = BaseModel.resume_training
    if _is_patched(original_resume):
        return

    @_mark
    def save_training_state(self, epoch, current_iter):
        """Save optimizers, schedulers and random states for resuming (BasicSR's keys, plus ``rng_states``).

        Args:
            epoch (int): Current epoch.
            current_iter (int): Current iteration; -1 (the final save) writes no state, as in BasicSR.
        """
        if current_iter == -1:
            return
        states = [rng_state()]
        if self.opt.get('dist'):
            states = [None] * dist.get_world_size()
            dist.all_gather_object(states, rng_state())
        if self.opt.get('rank', 0) != 0:
            return
        state = {
            'epoch': epoch, 'iter': current_iter, 'optimizers': [o.state_dict() for o in self.optimizers],
            'schedulers': [s.state_dict() for s in self.schedulers], 'rng_states': states
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

    @_mark
    @functools.wraps(original_resume)
    def resume_training(self, resume_state):
        original_resume(self, resume_state)
        states = resume_state.get('rng_states')
        if states and len(states) == self.opt.get('world_size', 1):
            set_rng_state(states[self.opt.get('rank', 0)])
        elif states:
            get_root_logger().warning(f'Not restoring random states: saved by {len(states)} processes, '
                                      f"resumed by {self.opt.get('world_size', 1)}.")

    BaseModel.save_training_state = save_training_state
    BaseModel.resume_training = resume_training


class OptionValueError(ValueError):
    """An option file value that a network (or other part of the run) rejects, named by its key."""


def _network_option_error(opt, error):
    """The message naming the option key behind ``error``, raised while building ``opt``'s networks.

    Each ``network_*`` spec is built again, alone (on the meta device, so nothing is allocated), to find
    the one that fails; the key is the first of its option names that the error message mentions.
    Returns None when no network spec fails on its own.
    """
    import torch
    from basicsr.utils.registry import ARCH_REGISTRY

    for key in sorted(k for k in opt if k.startswith('network_') and isinstance(opt[k], dict)):
        spec = dict(opt[key])
        arch = spec.pop('type', None)
        if arch not in ARCH_REGISTRY:
            return (f'{key}.type: {arch!r} is not a registered arch; fix {key}.type (BasicSR archs, or this '
                    "package's DeconvEDSR, SRCNN, DeconvSRCNN, DeconvNet)")
        try:
            with torch.device('meta'), warnings.catch_warnings():
                warnings.simplefilter('ignore')
                ARCH_REGISTRY.get(arch)(**spec)
        except (ValueError, TypeError, RuntimeError) as failure:
            message = str(failure)
            mentions = [(match.start(), name) for name in spec
                        for match in [re.search(rf'\b{re.escape(name)}\b', message)] if match]
            where = f'{key}.{min(mentions)[1]}' if mentions else key
            return f'{where} ({arch}): {message}; fix {where} in the option file'
    return None


def patch_build_model():
    """Name the option key when a network rejects its options.

    ``build_model`` builds the networks from ``network_g`` (``network_d``, ...) deep inside the model's
    constructor, and an arch's error names an argument (``block``) or nothing at all. When building the
    model fails, the networks are rebuilt alone to find the culprit, and an ``OptionValueError`` names
    ``network_g.<key>`` and says to fix it there; errors that no network spec reproduces pass unchanged.
    It runs after the data loaders are built (BasicSR's order), before any training step.
    """
    import basicsr.models
    import basicsr.test
    import basicsr.train

    original = basicsr.models.build_model
    if _is_patched(original):
        return

    @_mark
    @functools.wraps(original)
    def build_model(opt):
        try:
            return original(opt)
        except (ValueError, TypeError, RuntimeError, KeyError) as error:
            message = _network_option_error(opt, error)
            if message is None:
                raise
            raise OptionValueError(message) from error

    for module in (basicsr.models, basicsr.train, basicsr.test):
        module.build_model = build_model


class ImageBytes(bytes):
    """Bytes read by BasicSR's ``FileClient``, with ``source``: the file, or the LMDB and key."""


class CorruptImageError(OSError):
    """Image bytes that OpenCV cannot decode."""


def patch_image_reading():
    """Errors that name the file (or LMDB key) of an image that cannot be read.

    BasicSR 1.4.2's datasets do ``imfrombytes(file_client.get(path, key))``; ``imfrombytes`` returns None for
    bytes OpenCV cannot decode (a corrupt or truncated file), and the dataset fails later with
    ``'NoneType' object has no attribute 'astype'``; a key missing from an LMDB makes ``get`` return None
    and ``np.frombuffer`` fail. ``FileClient.get`` now raises ``KeyError`` for a missing LMDB key and returns
    ``ImageBytes`` that remember their source, and ``imfrombytes`` raises ``CorruptImageError`` naming it.
    ``imfrombytes`` is replaced in every loaded ``basicsr`` module that imported it.
    """
    import numpy as np
    from basicsr.utils import file_client, img_util

    original_get = file_client.FileClient.get
    original_imfrombytes = img_util.imfrombytes
    if _is_patched(original_get):
        return

    @_mark
    @functools.wraps(original_get)
    def get(self, filepath, client_key='default'):
        value = original_get(self, filepath, client_key)
        source = str(filepath)
        if isinstance(self.client, file_client.LmdbBackend):
            clients = list(self.client._client)
            db_path = self.client.db_paths[clients.index(client_key)] if client_key in clients else '?'
            source = f"key '{filepath}' of LMDB {db_path}"
            if value is None:
                raise KeyError(f'No entry for {source} (is meta_info.txt from another LMDB?)')
        value = ImageBytes(value)
        value.source = source
        return value

    @_mark
    @functools.wraps(original_imfrombytes)
    def imfrombytes(content, flag='color', float32=False):
        img = original_imfrombytes(content, flag, float32=False)
        if img is None:
            source = getattr(content, 'source', None) or f'({len(content)} bytes)'
            raise CorruptImageError(f'Cannot decode image {source}: the file is corrupt, truncated or not an '
                                    'image; replace it (or rebuild the LMDB)')
        if float32:
            img = img.astype(np.float32) / 255.
        return img

    file_client.FileClient.get = get
    for name, module in list(sys.modules.items()):
        if name.split('.')[0] == 'basicsr' and getattr(module, 'imfrombytes', None) is original_imfrombytes:
            module.imfrombytes = imfrombytes


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
    patch_make_exp_dirs()
    patch_init_dist()
    patch_model_to_device()
    patch_validation()
    patch_build_dataloader()
    patch_training_state_rng()
    patch_build_model()
    patch_image_reading()
    _applied = True
