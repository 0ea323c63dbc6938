"""The experiment lock: one training run per experiment folder.

BasicSR 1.4.2 does not notice a second training process on the same experiment: with ``--auto_resume`` it
writes its checkpoints beside the first's, without it it renames the running experiment's folder to
``*_archived_*`` under it. A training run now holds ``experiments/.<name>.lock`` (beside the folder, which
BasicSR may rename) from its start to its exit, and a second one fails at once, naming the holder's PID and
host. The lock is an ``fcntl.flock`` on that file, which the operating system releases when the holder
exits however it exits (``kill -9`` included), so a stale file never blocks. Under torchrun, rank 0 holds it.
"""
import atexit
import os
import socket
from os import path as osp


class ExperimentLockedError(RuntimeError):
    """Another process is training the same experiment."""


def lock_path(opt):
    """``experiments/.<name>.lock`` under the root path, beside the experiment folder."""
    root = opt['path']['experiments_root']
    return osp.join(osp.dirname(root), f'.{osp.basename(root)}.lock')


class ExperimentLock:
    """An exclusive lock on a file, held until ``release`` or the process's exit; records PID and host."""

    def __init__(self, path, name):
        self.path, self.name, self.fd = path, name, None

    def acquire(self):
        """Take the lock, or raise ``ExperimentLockedError`` naming its holder."""
        import fcntl

        os.makedirs(osp.dirname(self.path), exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 256).decode(errors='replace').strip() or 'another process'
                os.close(fd)
                raise ExperimentLockedError(
                    f'{self.name} is being trained by {holder}: one run per experiment '
                    f'folder. Wait for it, stop it (Ctrl-C saves its progress), or train under another name.')
            if osp.exists(self.path) and os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                break
            os.close(fd)  # the holder removed the file between our open and lock: lock the new one
        os.ftruncate(fd, 0)
        os.write(fd, f'PID {os.getpid()} on host {socket.gethostname()}\n'.encode())
        self.fd = fd
        atexit.register(self.release)
        return self

    def release(self):
        """Remove the file and release the lock (the file goes first: nobody locks a file on its way out)."""
        if self.fd is not None:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            os.close(self.fd)
            self.fd = None


def lock_experiment(opt):
    """Hold the experiment's lock for the rest of this process (rank 0 of a training run); see the module."""
    if opt['is_train'] and opt.get('rank', 0) == 0:
        ExperimentLock(lock_path(opt), opt['name']).acquire()
