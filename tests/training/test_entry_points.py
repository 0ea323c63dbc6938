"""Training and testing end to end on the CPU, through BasicSR's unedited scripts and our entry points.

Every pipeline runs in a subprocess (BasicSR attaches its log file handler once per process) from
``tmp_path``, which is the root path: experiments land in ``tmp_path/experiments``.
"""
import re
import shlex
import shutil
import sys
from pathlib import Path

import pytest
import torch

import deconv_basicsr.plugin  # noqa: F401  (BasicSR importable, the archs and the model registered)
from basicsr.archs import build_network
from basicsr.utils.registry import ARCH_REGISTRY

from deconv_basicsr.experiments.quickstart import read_record
from helpers import (check_python, copy_basicsr_script, sr_options, sr_test_options, tiny_network,
                     write_options)

ARCHS = ['EDSR', 'DeconvEDSR']


def _buffer_keys(network_g):
    return [name for name, _ in build_network(dict(network_g)).named_buffers()]


@pytest.mark.parametrize('arch', ARCHS)
def test_basicsr_train_script_trains_validates_and_resumes(tmp_path, image_pairs, arch):
    """BasicSR's own train.py: 4 iterations with validation, then ``--auto_resume`` to 6 (the CPU resume
    needs the compat shim of the script's own ``load_resume_state``); the EMA network keeps the trained
    buffers. A resume is exact in the project's pipeline (docs/compatibility.md): the same 4 + 2 iterations
    through ``python -m deconv_basicsr.train`` equal 6 without a stop, bit for bit."""
    name = f'tiny_{arch}'
    network_g = tiny_network(arch)
    opt_path = write_options(tmp_path / 'train.yml', sr_options(name, *image_pairs, network_g, total_iter=4))
    script = copy_basicsr_script(tmp_path, 'train.py')
    experiment = tmp_path / 'experiments' / name

    first = check_python([script, '-opt', opt_path], cwd=tmp_path)
    assert 'psnr' in first.stdout
    assert (experiment / 'training_states' / '4.state').is_file()
    assert (experiment / 'models' / 'net_g_latest.pth').is_file()

    second = check_python([script, '-opt', opt_path, '--auto_resume', '--force_yml', 'train:total_iter=6'],
                          cwd=tmp_path)
    assert 'Resuming training from epoch: ' in second.stdout and 'iter: 4.' in second.stdout
    assert (experiment / 'training_states' / '6.state').is_file()

    # The saved EMA network carries the trained statistics (buffers), not its initial ones.
    saved = torch.load(experiment / 'models' / 'net_g_6.pth')
    for key in _buffer_keys(network_g):
        assert torch.equal(saved['params_ema'][key], saved['params'][key]), key

    # In the project's pipeline the resume is exact: the same weights and statistics as 6 straight iterations.
    train = ['-m', 'deconv_basicsr.train', '-opt', opt_path, '--force_yml']
    check_python(train + [f'name={name}_resumed'], cwd=tmp_path)
    check_python(train + [f'name={name}_resumed', 'train:total_iter=6', '--auto_resume'], cwd=tmp_path)
    check_python(train + [f'name={name}_straight', 'train:total_iter=6'], cwd=tmp_path)
    resumed, straight = (torch.load(tmp_path / 'experiments' / f'{name}_{kind}' / 'models' / 'net_g_6.pth')
                         for kind in ('resumed', 'straight'))
    for params in ('params', 'params_ema'):
        for key, value in straight[params].items():
            assert torch.equal(resumed[params][key], value), f'{params}.{key}'


def test_module_entry_points_train_and_test(tmp_path, image_pairs):
    """``python -m deconv_basicsr.train`` / ``.test`` with the current directory as root path."""
    network_g = tiny_network('DeconvEDSR' if 'DeconvEDSR' in ARCH_REGISTRY else 'EDSR')
    train_opt = sr_options('tiny_entry', *image_pairs, network_g, total_iter=2)
    train_opt.pop('val')
    check_python(['-m', 'deconv_basicsr.train', '-opt', write_options(tmp_path / 'train.yml', train_opt)],
                 cwd=tmp_path)
    model_path = tmp_path / 'experiments' / 'tiny_entry' / 'models' / 'net_g_latest.pth'
    assert model_path.is_file()

    test_opt = write_options(tmp_path / 'test.yml', sr_test_options('tiny_entry_test', *image_pairs, network_g,
                                                                     model_path))
    result = check_python(['-m', 'deconv_basicsr.test', '-opt', test_opt], cwd=tmp_path)
    assert 'psnr' in result.stdout
    assert (tmp_path / 'results' / 'tiny_entry_test').is_dir()

    # BasicSR's own, unedited test.py finds the archs through the auto-load hook.
    shutil.rmtree(tmp_path / 'results')
    result = check_python([copy_basicsr_script(tmp_path, 'test.py'), '-opt', test_opt], cwd=tmp_path)
    assert 'psnr' in result.stdout


def test_console_scripts():
    bin_dir = Path(sys.executable).parent
    for command in ('deconv-basicsr-train', 'deconv-basicsr-test'):
        assert (bin_dir / command).is_file(), f'{command} is not installed in {bin_dir} (pip install -e .)'
    result = check_python([str(bin_dir / 'deconv-basicsr-train'), '--help'])
    assert '-opt' in result.stdout and '--auto_resume' in result.stdout


def test_ci_runs_the_readme_commands():
    """``.ci/run`` must run the README's install and test commands verbatim."""
    root = Path(__file__).resolve().parents[2]
    readme_lines = (root / 'README.md').read_text(encoding='utf-8').splitlines()
    ci_lines = (root / '.ci' / 'run').read_text(encoding='utf-8').splitlines()
    install = [line for line in ci_lines if line.startswith('pip install')]
    tests = [line.split(' || ')[0] for line in ci_lines if line.startswith('python -m pytest')]
    assert len(install) == 1 and len(tests) == 1
    assert install[0] in readme_lines and tests[0] in readme_lines


def test_readme_quickstart_figures_come_from_the_record():
    """Every PSNR and the timing the README's quickstart quotes are those of an entry of its record."""
    root = Path(__file__).resolve().parents[2]
    section = (root / 'README.md').read_text(encoding='utf-8').split('## Quickstart')[1].split('\n## ')[0]
    record = read_record(root / 'docs' / 'quickstart' / 'runs.json')
    psnrs = {entry['psnr'] for entry in record}
    quoted = [float(x) for x in re.findall(r'(\d+\.\d{4}) dB', section)]
    assert quoted and set(quoted) <= psnrs
    low, high = map(float, re.search(r'# psnr: ([\d.]+)` to `([\d.]+)`', section).groups())
    assert (low, high) == (round(min(psnrs), 2), round(max(psnrs), 2))  # the range over every recorded run
    minutes, seconds = map(int, re.search(r'took (\d+) min (\d+) s', section).groups())
    assert 60 * minutes + seconds in {round(e['prepare_seconds'] + e['train_seconds']) for e in record}


def test_readme_basicsr_scripts_pair_connects(tmp_path, image_pairs):
    """The README's pair of BasicSR-script commands, as written (names swapped for a tiny network's), from the
    project beside a BasicSR checkout (its unedited scripts). Training writes under the checkout (BasicSR's
    root path); the test command must test that model, not a same-named one in the project's own folder."""
    readme = (Path(__file__).resolve().parents[2] / 'README.md').read_text(encoding='utf-8')
    block = readme.split("**With BasicSR's own scripts**")[1].split('```bash\n')[1].split('```')[0]
    train_command, test_command = [shlex.split(line.replace('edsr_deconv_x2', 'tiny_x2'))
                                   for line in block.replace('\\\n', ' ').splitlines()]
    checkout, project = tmp_path / 'BasicSR', tmp_path / 'project'
    copy_basicsr_script(checkout, 'train.py')
    copy_basicsr_script(checkout, 'test.py')
    network_g = tiny_network('DeconvEDSR')
    checkpoint = 'experiments/tiny_x2/models/net_g_latest.pth'  # as the project's test option files give it
    train_opt = sr_options('tiny_x2', *image_pairs, network_g, total_iter=2)
    train_opt.pop('val')
    test_opt = sr_test_options('tiny_x2', *image_pairs, network_g, checkpoint)
    options = project / 'options'
    options.mkdir(parents=True)
    write_options(options / 'train_tiny_x2.yml', train_opt)
    write_options(options / 'test_tiny_x2.yml', test_opt)
    decoy = project / checkpoint  # a model of the same name in the project's folder must not be the one tested
    decoy.parent.mkdir(parents=True)
    torch.save({'params_ema': {}}, decoy)

    assert train_command[0] == test_command[0] == 'python'
    check_python(train_command[1:], cwd=project)
    trained = checkout / checkpoint
    assert trained.is_file()
    result = check_python(test_command[1:], cwd=project)
    assert f'model from ../BasicSR/{checkpoint}, with param key: [params_ema]' in result.stdout
    assert '# psnr:' in result.stdout
    assert (checkout / 'results' / 'tiny_x2').is_dir() and not (project / 'results').exists()
