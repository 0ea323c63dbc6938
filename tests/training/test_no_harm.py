"""Installing the plugin changes nothing for a BasicSR user who uses neither its archs nor its models.

Plain EDSR trained by BasicSR's own, unedited ``train.py``, with the plugin's start-up hook on (the plugin
is loaded when BasicSR is imported) and off (``DECONV_BASICSR_AUTOLOAD=0``, plus the one torchvision alias
BasicSR 1.4.2 needs to import at all), ends with bit-identical weights and EMA weights. The run has
augmentation (flips, rotations, random crops), shuffling, EMA and a learning-rate milestone: every random
stream and every BasicSR method the plugin could touch.
"""
import torch

from helpers import (check_python, copy_basicsr_script, sr_options, subprocess_env, tiny_network, write_image_pairs,
                     write_options)

# What a user without the plugin must do for BasicSR 1.4.2 to import under torchvision >= 0.17, then run the script.
BARE_LAUNCHER = '''
import runpy, sys, types
from torchvision.transforms import functional
alias = types.ModuleType('torchvision.transforms.functional_tensor')
alias.rgb_to_grayscale = functional.rgb_to_grayscale
sys.modules[alias.__name__] = alias
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name='__main__')
'''


def _train(root, hook):
    gt_dir, lq_dir = write_image_pairs(root / 'data', num_images=4, size=32)
    opt = sr_options('edsr', gt_dir, lq_dir, tiny_network('EDSR'), total_iter=6, checkpoint_freq=100, gt_size=16)
    opt['val'] = None  # no validation: only training can differ
    options = write_options(root / 'edsr.yml', opt)
    script = copy_basicsr_script(root, 'train.py')
    if hook:
        result = check_python([script, '-opt', options], cwd=root, env=subprocess_env())
    else:
        result = check_python(['-c', BARE_LAUNCHER, script, '-opt', options], cwd=root,
                              env=subprocess_env(DECONV_BASICSR_AUTOLOAD=0))
    assert result.stdout.count('iter:') >= 6, result.stdout
    return torch.load(root / 'experiments' / 'edsr' / 'models' / 'net_g_latest.pth')


def test_plain_edsr_trains_bit_identically_with_and_without_the_plugin(tmp_path):
    with_plugin = _train(tmp_path / 'hook_on', hook=True)
    without = _train(tmp_path / 'hook_off', hook=False)
    assert set(with_plugin) == set(without) == {'params', 'params_ema'}
    for key in with_plugin:
        assert set(with_plugin[key]) == set(without[key])
        for name, tensor in with_plugin[key].items():
            assert torch.equal(tensor, without[key][name]), f'{key}.{name} differs'


def test_the_hook_loads_the_plugin_into_basicsr_train_script(tmp_path):
    """The comparison above is between two different processes: with the hook, BasicSR's script did load the
    plugin (its archs are registered), without it, it did not."""
    probe = ('import sys\n'
             'import basicsr\n'
             'from basicsr.utils.registry import ARCH_REGISTRY\n'
             'print("DeconvEDSR" in ARCH_REGISTRY, "deconv_basicsr.plugin" in sys.modules)\n')
    on = check_python(['-c', probe], cwd=tmp_path, env=subprocess_env())
    assert on.stdout.split()[-2:] == ['True', 'True']
    off = check_python(['-c', BARE_LAUNCHER.replace("runpy.run_path(sys.argv[0], run_name='__main__')", probe)],
                       cwd=tmp_path, env=subprocess_env(DECONV_BASICSR_AUTOLOAD=0))
    assert off.stdout.split()[-2:] == ['False', 'False']
