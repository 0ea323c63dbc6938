"""Check a folder of HR images against the sha256 of a known benchmark set, shipped with the package.

``benchmark_checksums.sha256`` (``sha256sum`` format, ``<set>/<file name>``) lists Set5, Set14, B100 and
Urban100 (docs/data.md says where each comes from). Urban100 is listed both as its source PNG files and as
their lossless WebP re-encoding: a folder may hold either.
"""
import hashlib
from collections import defaultdict
from os import path as osp

from deconv_basicsr.prepare.image_io import list_images

CHECKSUMS = osp.join(osp.dirname(osp.abspath(__file__)), 'benchmark_checksums.sha256')


def read_checksums(path=CHECKSUMS):
    """``{set: {file name: sha256}}`` from a ``sha256sum`` file of ``<set>/<file name>`` lines."""
    checksums = defaultdict(dict)
    with open(path, encoding='utf-8') as f:
        for line in f:
            if line.strip() and not line.startswith('#'):
                digest, name = line.split(maxsplit=1)
                set_name, file_name = name.strip().lstrip('*').split('/')
                checksums[set_name][file_name] = digest
    return dict(checksums)


def sha256(path):
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def check_set(folder, set_name, checksums=None):
    """How the images in ``folder`` differ from the known set ``set_name``, one line per file naming it.

    Args:
        folder (str): Folder of HR images.
        set_name (str): A set of ``checksums``, e.g. 'Set5'.
        checksums (dict | None): ``read_checksums()`` (the shipped file) if None. Default: None.

    Returns:
        list[str]: Files whose content differs, files the set does not have, images of the set that are
        missing; empty if the folder holds exactly the set's images.
    """
    checksums = read_checksums() if checksums is None else checksums
    if set_name not in checksums:
        raise ValueError(f'unknown set {set_name}; known sets: {", ".join(sorted(checksums))}')
    known = checksums[set_name]
    problems, found = [], set()
    for path in list_images(folder):
        name = osp.basename(path)
        if name not in known:
            problems.append(f'{path}: not an image of {set_name}')
        elif sha256(path) != known[name]:
            problems.append(f'{path}: differs from {set_name}\'s {name} (sha256 {known[name][:12]}...)')
        found.add(osp.splitext(name)[0])
    for stem in sorted({osp.splitext(name)[0] for name in known} - found):
        names = ' or '.join(sorted(name for name in known if osp.splitext(name)[0] == stem))
        problems.append(f'{osp.join(folder, names)}: missing')
    return problems
