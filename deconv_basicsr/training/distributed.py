"""Defect: distributed training needs GPUs (``torchrun ... --launcher pytorch`` fails on the CPU).

* BasicSR 1.4.2's ``init_dist`` calls ``torch.cuda.set_device(rank % torch.cuda.device_count())`` (a
  ZeroDivisionError without GPUs), and ``parse_options`` calls it without ``dist_params``, so the backend is
  always NCCL, which has no CPU tensors. ``init_processes`` (called by this package's ``parse_options``, which
  knows the options) uses Gloo when the run trains on the CPU and BasicSR's ``init_dist`` otherwise, and
  destroys the Gloo group at exit (BasicSR never does).
* ``BaseModel.model_to_device`` wraps networks in DistributedDataParallel with
  ``device_ids=[torch.cuda.current_device()]``: CPU networks are now wrapped without ``device_ids``.
* ``BaseModel.validation`` (rank 0 only, in SRModel) ran ``net_g`` through DistributedDataParallel when
  there is no EMA network; its forward broadcasts the buffers, a collective the other processes never
  join (a crash or a hang at the final validation). Validation now runs the bare network, on any device.
"""
import atexit

from deconv_basicsr.compat.patching import wrap


def uses_cuda(opt):
    """Whether the run trains on CUDA: CUDA is available and the options do not ask for ``num_gpu: 0``."""
    import torch

    return torch.cuda.is_available() and opt.get('num_gpu') != 0


def init_processes(launcher, opt):
    """Start torch.distributed for ``launcher`` ('pytorch' or 'slurm'): BasicSR's way on GPUs, Gloo on the CPU."""
    import torch.multiprocessing as mp
    from basicsr.utils.dist_util import init_dist
    from torch import distributed as dist

    if uses_cuda(opt):
        if launcher == 'slurm' and 'dist_params' in opt:
            return init_dist(launcher, **opt['dist_params'])
        return init_dist(launcher)
    if launcher != 'pytorch':
        raise ValueError(f'--launcher {launcher} needs GPUs; on the CPU, start the processes with '
                         'torchrun ... --launcher pytorch')
    if mp.get_start_method(allow_none=True) is None:
        mp.set_start_method('spawn')
    dist.init_process_group(backend='gloo')
    # BasicSR never destroys its process group. Left to interpreter shutdown, a Gloo group can abort the
    # process ("terminate called without an active exception") after training has finished.
    atexit.register(dist.destroy_process_group)


def model_to_device(original, self, net):
    from torch.nn.parallel import DistributedDataParallel

    if not (self.opt['dist'] and self.device.type == 'cpu'):
        return original(self, net)
    return DistributedDataParallel(net.to(self.device),
                                   find_unused_parameters=self.opt.get('find_unused_parameters', False))


def validation(original, self, dataloader, current_iter, tb_logger, save_img=False):
    wrapped = getattr(self, 'net_g', None)
    if not self.opt['dist'] or wrapped is None:
        return original(self, dataloader, current_iter, tb_logger, save_img)
    self.net_g = self.get_bare_model(wrapped)
    try:
        return original(self, dataloader, current_iter, tb_logger, save_img)
    finally:
        self.net_g = wrapped


def install():
    from basicsr.models.base_model import BaseModel

    wrap(BaseModel, 'model_to_device', model_to_device)
    wrap(BaseModel, 'validation', validation)
