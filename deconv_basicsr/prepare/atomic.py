"""Output folders that appear under their final name only once complete.

Every output is written into a hidden sibling ``.{name}.partial`` and renamed into place at the end, so an
interrupted or failed run never leaves a half-written folder (or LMDB) under a name that looks valid.
A rename within one folder is atomic on POSIX file systems.
"""
import contextlib
import os
import shutil
from os import path as osp

__all__ = ['atomic_dir', 'partial_path']


def partial_path(path):
    """The hidden work folder used while ``path`` is being written."""
    path = osp.abspath(path)
    return osp.join(osp.dirname(path), f'.{osp.basename(path)}.partial')


@contextlib.contextmanager
def atomic_dir(path, overwrite=False):
    """Context manager yielding a fresh work folder that becomes ``path`` on success.

    Leftover work folders of an interrupted run are removed first. On an exception the work folder is
    removed and ``path`` is left untouched. With ``overwrite``, an existing ``path`` is replaced only after
    the new content is complete.

    Args:
        path (str): Final folder path.
        overwrite (bool): Replace an existing ``path``. Default: False (raise FileExistsError).

    Yields:
        str: The work folder to write into.
    """
    path = osp.abspath(path)
    if osp.exists(path) and not overwrite:
        raise FileExistsError(f'{path} exists; pass overwrite to replace it.')
    work, old = partial_path(path), osp.join(osp.dirname(path), f'.{osp.basename(path)}.old')
    for leftover in (work, old):  # from an interrupted run
        if osp.exists(leftover):
            shutil.rmtree(leftover)
    os.makedirs(work)
    try:
        yield work
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    if osp.exists(path):
        os.rename(path, old)
        os.rename(work, path)
        shutil.rmtree(old)
    else:
        os.rename(work, path)
