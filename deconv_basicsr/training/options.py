"""Options: the one loader of option files, and a run's options as BasicSR's ``parse_options`` makes them.

BasicSR 1.4.2's ``parse_options`` starts torch.distributed before the options are complete (``init_dist``
cannot see ``num_gpu`` or ``--force_yml``), and its pipelines then create the experiment folder and the log
before anything is checked. ``read_options`` reads the command line and the option file once, as BasicSR
does (same flags, same derived keys; ``--force_yml`` applies before anything uses the options), plus
``--check_images``, and starts nothing: the project's pipeline (``pipeline.parse_options``) checks them,
then starts the run. A missing, empty or invalid option
file raises ``OptionFileError`` naming the file and, for invalid YAML, the line and column.
"""
import argparse
import os
import random
from os import path as osp


def _command_line():
    parser = argparse.ArgumentParser()
    parser.add_argument('-opt', type=str, required=True, help='Path to option YAML file.')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none', help='job launcher')
    parser.add_argument('--auto_resume', action='store_true')
    parser.add_argument('--debug', action='store_true')
    parser.add_argument('--local_rank', type=int, default=0)
    parser.add_argument(
        '--force_yml', nargs='+', default=None, help='Force to update yml files. Examples: train:ema_decay=0.999')
    parser.add_argument('--check_images', action='store_true',
                        help='decode every training image at start-up (validation and test images always are)')
    return parser.parse_args()


def _force(opt, entry):
    """Apply one ``--force_yml`` entry (``a:b:c=value``) as BasicSR does (it may create the last key)."""
    from basicsr.utils.options import _postprocess_yml_value  # BasicSR's own parsing of the value

    keys, value = entry.split('=')
    *parents, last = keys.strip().split(':')
    target = opt
    for key in parents:
        target = target[key]
    target[last] = _postprocess_yml_value(value.strip())


class OptionFileError(ValueError):
    """An option file that cannot be read as options: missing, empty, not YAML, or not a mapping."""


#: Keys BasicSR's ``parse_options`` reads from every option file.
REQUIRED_KEYS = ('name', 'num_gpu', 'datasets', 'path')


def load_options(path):
    """The options of the YAML file ``path``, loaded as BasicSR loads them (ordered mappings).

    Raises:
        OptionFileError: Naming the file, and the line and column where YAML locates the error.
    """
    import yaml
    from basicsr.utils.options import ordered_yaml

    try:
        with open(path, mode='r') as f:
            opt = yaml.load(f, Loader=ordered_yaml()[0])
    except FileNotFoundError:
        raise OptionFileError(f'Option file {path}: not found (relative to {os.getcwd()})') from None
    except IsADirectoryError:
        raise OptionFileError(f'Option file {path}: is a folder, not a file') from None
    except yaml.YAMLError as error:
        mark = getattr(error, 'problem_mark', None)
        where = f' at line {mark.line + 1}, column {mark.column + 1}' if mark is not None else ''
        problem = getattr(error, 'problem', None) or str(error)
        context, start = getattr(error, 'context', None), getattr(error, 'context_mark', None)
        if context and start is not None:
            problem += f' ({context} from line {start.line + 1}, column {start.column + 1})'
        raise OptionFileError(f'Option file {path}: not valid YAML{where}: {problem}') from None
    if opt is None:
        raise OptionFileError(f'Option file {path}: empty (it holds no options)')
    if not isinstance(opt, dict):
        raise OptionFileError(f'Option file {path}: holds a {type(opt).__name__}, not options (key: value lines)')
    return opt



def read_options(root_path, is_train=True):
    """The options of this run, as BasicSR's ``parse_options`` returns them, without starting anything.

    Distributed keys (``dist``, ``rank``, ``world_size``) describe a single process; ``parse_options`` sets them.

    Returns:
        tuple[dict, argparse.Namespace]: Options and command-line arguments.
    """
    import torch

    args = _command_line()
    opt = load_options(args.opt)
    missing = [key for key in REQUIRED_KEYS if key not in opt]
    if missing:
        raise OptionFileError(f"Option file {args.opt}: no {', '.join(missing)} (BasicSR needs "
                              f"{', '.join(REQUIRED_KEYS)})")
    for entry in args.force_yml or []:
        _force(opt, entry)

    opt['dist'], opt['rank'], opt['world_size'] = False, 0, 1
    if opt.get('manual_seed') is None:
        opt['manual_seed'] = random.randint(1, 10000)
    opt['auto_resume'] = args.auto_resume
    opt['is_train'] = is_train
    if args.debug and not opt['name'].startswith('debug'):
        opt['name'] = 'debug_' + opt['name']
    if opt['num_gpu'] == 'auto':
        opt['num_gpu'] = torch.cuda.device_count()

    for phase, dataset in opt['datasets'].items():
        # for multiple datasets, e.g., val_1, val_2; test_1, test_2
        dataset['phase'] = phase.split('_')[0]
        if 'scale' in opt:
            dataset['scale'] = opt['scale']
        for key in ('dataroot_gt', 'dataroot_lq'):
            if dataset.get(key) is not None:
                dataset[key] = osp.expanduser(dataset[key])
    for key, val in opt['path'].items():
        if (val is not None) and ('resume_state' in key or 'pretrain_network' in key):
            opt['path'][key] = osp.expanduser(val)

    if is_train:
        experiments_root = osp.join(root_path, 'experiments', opt['name'])
        opt['path'].update(experiments_root=experiments_root, models=osp.join(experiments_root, 'models'),
                           training_states=osp.join(experiments_root, 'training_states'), log=experiments_root,
                           visualization=osp.join(experiments_root, 'visualization'))
        if 'debug' in opt['name']:
            if 'val' in opt:
                opt['val']['val_freq'] = 8
            opt['logger']['print_freq'] = 1
            opt['logger']['save_checkpoint_freq'] = 8
    else:
        results_root = osp.join(root_path, 'results', opt['name'])
        opt['path'].update(results_root=results_root, log=results_root,
                           visualization=osp.join(results_root, 'visualization'))
    return opt, args
