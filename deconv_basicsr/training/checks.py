"""Start-up checks: everything an option file can get wrong is found before a run writes anything.

BasicSR 1.4.2 starts creating the experiment folder and the log, then fails deep inside dataset or model
construction when a path is wrong (for an LMDB: "No such file or directory: .../meta_info.txt"), when a
network option is wrong (``model_options``), and only at the first validation when a validation image is
corrupt. ``check_startup``, the one place where options are validated, runs first thing in the project's
training and test pipelines (``pipeline.parse_options``):

* ``check_option_paths``: dataset and checkpoint paths exist, named by their option key, with the command
  that produces them;
* ``model_options.check_model_options``: model type, network specs (unknown keys, values) and the model's
  own options; ``nonfinite.check_options``: the non-finite guard's (``train.nonfinite``);
* ``check_dataset_images``: validation and test images decode; the keys listed in an LMDB's
  ``meta_info.txt`` are in the LMDB. Training images are decoded too on request (``--check_images``).
"""
import os
import re
from os import path as osp

_DATASET_KEYS = ('dataroot_gt', 'dataroot_lq', 'meta_info_file')
_PATH_KEYS = ('pretrain_network_g', 'pretrain_network_d', 'resume_state')
_HINTS = (
    ('Embedded', 'python scripts/prepare_embedded.py'),
    ('DIV2K100', 'python scripts/prepare_div2k.py --skip-train'),
    ('DIV2K', 'python scripts/prepare_div2k.py --root datasets/DIV2K'),
    ('benchmark', 'python scripts/prepare_benchmark.py --hr <HR image folder> --out <benchmark folder>'),
)


class OptionPathError(FileNotFoundError):
    """A path given in an option file does not exist."""


class DatasetError(ValueError):
    """A dataset whose LMDB does not hold what its ``meta_info.txt`` lists."""


def _hint(value):
    """Which command produces a missing path, if it follows the project's conventions."""
    match = re.search(r'experiments/([^/]+)/models/', value.replace('\\', '/'))
    if match:
        name = match.group(1)
        return f"written by training '{name}': python -m deconv_basicsr.train -opt options/train_{name}.yml"
    for marker, command in _HINTS:
        if marker in value:
            return f'prepare it with: {command}'
    return None


def _problem(key, value, what):
    hint = _hint(value)
    return f"{key}: '{value}' {what}" + (f' ({hint})' if hint else '')


def check_option_paths(opt):
    """Check that the data and checkpoint paths of a (parsed or raw) option dict exist.

    Checks ``datasets.<phase>.dataroot_gt`` / ``dataroot_lq`` / ``meta_info_file`` (for the ``lmdb`` backend,
    that the folders hold ``data.mdb`` and ``meta_info.txt``) and ``path.pretrain_network_g`` /
    ``pretrain_network_d`` / ``resume_state``. Relative paths are resolved from the current directory, as
    BasicSR does.

    Args:
        opt (dict): Options as loaded from YAML.

    Raises:
        OptionPathError: Listing every missing path with its option key, e.g.
            ``datasets.train.dataroot_gt: 'datasets/DIV2K/DIV2K_train_HR_sub.lmdb' does not exist``.
    """
    problems = []
    for phase, dataset in (opt.get('datasets') or {}).items():
        lmdb_backend = (dataset.get('io_backend') or {}).get('type') == 'lmdb'
        for key in _DATASET_KEYS:
            values = dataset.get(key)
            for value in values if isinstance(values, (list, tuple)) else [values]:
                if value is None:
                    continue
                full_key, path = f'datasets.{phase}.{key}', osp.expanduser(str(value))
                if not osp.exists(path):
                    problems.append(_problem(full_key, value, 'does not exist'))
                elif lmdb_backend and key != 'meta_info_file':
                    missing = [n for n in ('data.mdb', 'meta_info.txt') if not osp.isfile(osp.join(path, n))]
                    if missing:
                        problems.append(_problem(full_key, value, f"is not a complete LMDB (no {', '.join(missing)})"))
    for key in _PATH_KEYS:
        value = (opt.get('path') or {}).get(key)
        if value and not osp.isfile(osp.expanduser(str(value))):
            problems.append(_problem(f'path.{key}', value, 'does not exist'))
    if problems:
        raise OptionPathError(f'Option paths not found (relative to {os.getcwd()}):\n  ' + '\n  '.join(problems))


def check_option_file(opt_path):
    """Load an option YAML file as BasicSR does and run ``check_option_paths`` on it.

    Args:
        opt_path (str): Option file.

    Returns:
        dict: The loaded options.
    """
    from deconv_basicsr.training.options import load_options

    opt = load_options(opt_path)
    check_option_paths(opt)
    return opt


def _lmdb_keys(path):
    """The keys of an LMDB folder's ``meta_info.txt`` (as BasicSR reads them) and those of its database."""
    import lmdb

    with open(osp.join(path, 'meta_info.txt')) as f:
        listed = [line.split('.')[0] for line in f if line.strip()]
    env = lmdb.open(path, readonly=True, lock=False, readahead=False, meminit=False)
    try:
        with env.begin() as txn:
            stored = {key.decode('ascii') for key in txn.cursor().iternext(values=False)}
    finally:
        env.close()
    return listed, stored


def _decode_lmdb(path, keys):
    import lmdb

    from deconv_basicsr.training.images import ImageBytes, decode_image

    env = lmdb.open(path, readonly=True, lock=False, readahead=False, meminit=False)
    try:
        with env.begin() as txn:
            for key in keys:
                content = ImageBytes(txn.get(key.encode('ascii')))
                content.source = f"key '{key}' of LMDB {path}"
                decode_image(content)
    finally:
        env.close()


def _decode_folder(folder):
    from basicsr.utils import scandir

    from deconv_basicsr.training.images import ImageBytes, decode_image

    for name in sorted(scandir(folder, recursive=True)):
        path = osp.join(folder, name)
        with open(path, 'rb') as f:
            content = ImageBytes(f.read())
        content.source = path
        decode_image(content)


def check_dataset_images(opt, all_images=False):
    """Check the images of every dataset in ``opt`` (paths must exist: ``check_option_paths`` first).

    LMDB folders: every key of ``meta_info.txt`` must be in the database, and the GT and LQ LMDBs of a
    dataset must list the same keys. Validation and test images are decoded; training images (large sets)
    only with ``all_images``.

    Raises:
        CorruptImageError: Naming the file, or the LMDB and its key.
        DatasetError: Naming a key of ``meta_info.txt`` that the LMDB lacks.
    """
    for phase, dataset in (opt.get('datasets') or {}).items():
        decode = all_images or not phase.startswith('train')
        folders = [dataset[key] for key in ('dataroot_gt', 'dataroot_lq') if dataset.get(key)]
        if (dataset.get('io_backend') or {}).get('type') == 'lmdb':
            listed_keys = []
            for folder in folders:
                listed, stored = _lmdb_keys(folder)
                missing = [key for key in listed if key not in stored]
                if missing:
                    raise DatasetError(f'datasets.{phase}: {len(missing)} key(s) of {folder}/meta_info.txt are not in '
                                   f"the LMDB (first: '{missing[0]}'); rebuild it")
                listed_keys.append(listed)
                if decode:
                    _decode_lmdb(folder, listed)
            if len(listed_keys) == 2 and sorted(listed_keys[0]) != sorted(listed_keys[1]):
                raise DatasetError(f'datasets.{phase}: the GT and LQ LMDBs list different keys in meta_info.txt')
        elif decode:
            for folder in folders:
                _decode_folder(folder)


def check_startup(opt, source=None, all_images=False):
    """Every start-up check, in order: paths, model and network options, images.

    Args:
        opt (dict): Parsed options.
        source (str, optional): The option file, named in messages.
        all_images (bool): Decode training images too.
    """
    from deconv_basicsr.training import nonfinite
    from deconv_basicsr.training.model_options import OptionValueError, check_model_options

    check_option_paths(opt)
    check_model_options(opt, source)
    try:
        nonfinite.check_options(opt)
    except ValueError as error:
        raise OptionValueError(f"{error} (fix it in {source or 'the option file'})") from None
    check_dataset_images(opt, all_images)
