"""Early, readable errors for option files that point to missing data or checkpoints.

BasicSR fails deep inside dataset or model construction when a path is wrong (for an LMDB: "No such file
or directory: .../meta_info.txt"). ``check_option_paths`` names the option key instead and says which
preparation command produces the missing path.
"""
import os
import re
from os import path as osp

__all__ = ['OptionPathError', 'check_option_paths', 'check_option_file']

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
    import yaml
    from basicsr.utils.options import ordered_yaml

    with open(opt_path) as f:
        opt = yaml.load(f, Loader=ordered_yaml()[0])
    check_option_paths(opt)
    return opt
