"""Interruption: Ctrl-C saves the current iteration and tells how to resume.

BasicSR 1.4.2's training loop has no interruption handling: SIGINT ends it with a ``KeyboardInterrupt``
traceback wherever it is, SIGTERM (a cluster's scheduler) kills it, and the steps since the last periodic
checkpoint are lost. Now, during training, the first SIGINT or SIGTERM asks the run to stop: the current
iteration finishes (its logging, checkpoint and validation included), a checkpoint and a training state are
saved at that iteration, the command that resumes it is printed, and the process exits with 128 + the
signal's number. A second signal stops it at once, without saving.

The loop is BasicSR's and cannot be edited; the project's pipeline installs the handlers, and the
request is checked where every iteration starts, ``ResumableModel.update_learning_rate``, which also runs
before the next iteration's step. Under
torch.distributed the processes agree on the iteration to stop at (an all-reduce of the request at each
iteration), all save (BasicSR's ``save`` is collective, rank 0 writes), rank 0 prints, and the others wait for
it before exiting. The model saves through ``save_resume_point(epoch, iter)``, which may differ from its
periodic ``save`` (``DeconvSRModel`` does not recalibrate there: the run resumed from it must continue with
the statistics the uninterrupted run had).
"""
import os
import shlex
import shutil
import signal
import sys

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """The SIGINT and SIGTERM handler of a training process: the first signal asks to stop, a second stops.

    Forked data-loader workers inherit it and ignore the signals: the training process decides.
    """

    def __init__(self, announce=True):
        self.pid, self.announce, self.signum = os.getpid(), announce, None

    def __call__(self, signum, frame):
        if os.getpid() != self.pid:
            return
        name = signal.Signals(signum).name
        if self.signum is not None:
            print(f'\n{name} again: stopping now, without saving.', file=sys.stderr, flush=True)
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        self.signum = signum
        if self.announce:
            print(f'\n{name}: finishing this iteration, then saving a checkpoint to resume from. '
                  f'{name} again stops at once, without saving.', file=sys.stderr, flush=True)


def install_signal_handlers(rank=0):
    """Make SIGINT and SIGTERM ask the training of this process to stop (see the module)."""
    request = StopRequest(announce=rank == 0)
    for signum in SIGNALS:
        signal.signal(signum, request)


def stop_request():
    """The signal that asked this process to stop, or None (also when the handlers are not installed)."""
    handler = signal.getsignal(signal.SIGINT)
    return handler.signum if isinstance(handler, StopRequest) else None


def agreed_stop(opt, device):
    """The stop signal, agreed on by every process of the run (the largest requested), or None."""
    from deconv_basicsr.training.distributed import max_over_processes

    return max_over_processes(stop_request() or 0, opt, device) or None


def resume_command():
    """The command line of this run, with ``--auto_resume``, as the user would type it again."""
    args = sys.argv[1:] + ([] if '--auto_resume' in sys.argv else ['--auto_resume'])
    orig = getattr(sys, 'orig_argv', [sys.executable])
    if '-m' in orig[1:]:
        program = ['-m', orig[orig.index('-m', 1) + 1]]
    else:
        program = [sys.argv[0]]
    name = os.path.basename(program[-1])
    if program[0] != '-m' and shutil.which(name) and os.path.samefile(shutil.which(name), program[-1]):
        command = [name]  # a console script on the PATH
    elif 'LOCAL_WORLD_SIZE' in os.environ and 'TORCHELASTIC_RUN_ID' in os.environ:
        command = ['torchrun', f"--nproc_per_node={os.environ['LOCAL_WORLD_SIZE']}"] + program
    else:
        python = os.path.basename(orig[0])
        same = shutil.which(python) and os.path.samefile(shutil.which(python), sys.executable)
        command = [python if same else sys.executable] + program
    return shlex.join(command + args)
