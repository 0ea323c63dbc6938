"""Distributed training on the CPU (with BasicSR 1.4.2 alone, ``torchrun ... --launcher pytorch`` fails there).

* BasicSR 1.4.2's ``init_dist`` calls ``torch.cuda.set_device(rank % torch.cuda.device_count())`` (a
  ZeroDivisionError without GPUs), and ``parse_options`` calls it without ``dist_params``, so the backend is
  always NCCL, which has no CPU tensors. ``init_processes`` (called by the project's ``parse_options``, which
  knows the options) uses Gloo when the run trains on the CPU and BasicSR's ``init_dist`` otherwise, and
  destroys the process group once training has ended in every process (BasicSR never does).
* ``BaseModel.model_to_device`` wraps networks in DistributedDataParallel with
  ``device_ids=[torch.cuda.current_device()]``, and ``BaseModel.validation`` (rank 0 only) runs ``net_g``
  through it: ``ResumableModel`` overrides both (``resumable``).

``max_over_processes`` is how the processes agree on a decision (stop on Ctrl-C, skip a non-finite step).
"""
import atexit


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
    atexit.register(end_processes, wait=False)


def end_processes(wait=True):
    """Destroy the process group, if any. ``wait``: first wait for every process (a barrier), so that no
    process tears its Gloo connections down while another still works: rank 0 validates once more after the
    loop, and a rank that exited meanwhile aborted 1 of 4 runs of the torchrun test on a 2-core machine."""
    from torch import distributed as dist

    if dist.is_available() and dist.is_initialized():
        if wait:
            dist.barrier()
        dist.destroy_process_group()


def max_over_processes(value, opt, device):
    """The largest ``value`` (an int) of all the run's processes (an all-reduce under torch.distributed), so
    that every process takes the same decision."""
    if not opt.get('dist'):
        return value
    import torch
    from torch import distributed as dist

    tensor = torch.tensor([value], device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return int(tensor.item())
