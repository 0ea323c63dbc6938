"""BasicSR 1.4.2's version-gated shims (``deconv_basicsr.compat``) and the auto-load hook.

The hook tests run fresh interpreters, so they test the installed package (``pip install -e .``):
the ``.pth`` file in site-packages is what they exercise.
"""
import json
import sys
import types

import pytest
import torch
from torch import nn

import deconv_basicsr.plugin  # noqa: F401  (BasicSR importable, the archs and the model registered)
from basicsr.models.base_model import BaseModel
from basicsr.models.lr_scheduler import MultiStepRestartLR
from basicsr.utils import options

from deconv_basicsr import compat
from deconv_basicsr.layers import FastDeconv
from deconv_basicsr.compat.patching import replace_in_main_script
from helpers import check_python, subprocess_env

NOT_INSTALLED = 'is deconv-basicsr installed (pip install -e .)? Its .pth file installs the hook'

# Prints which of the interesting modules a fresh interpreter has loaded, and the hook's state.
REPORT = """
import json, sys
hook = sys.modules.get('_deconv_basicsr_autoload')
registry = sys.modules.get('basicsr.utils.registry')
archs = registry.ARCH_REGISTRY if registry else ()
print(json.dumps({
    'modules': sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'basicsr', 'deconv_basicsr')
                      and '.' not in m),
    'hook_imported': hook is not None,
    'hook_installed': bool(hook and hook.installed()),
    'FastDeconv': 'FastDeconv' in archs,
    'DeconvEDSR': 'DeconvEDSR' in archs,
}))
"""

# Installs the torchvision stand-in by hand, as a user without the hook would have to.
MANUAL_STAND_IN = """
import sys, types
import torchvision.transforms.functional as F
stand_in = types.ModuleType('torchvision.transforms.functional_tensor')
stand_in.rgb_to_grayscale = F.rgb_to_grayscale
sys.modules.setdefault(stand_in.__name__, stand_in)
"""


def report(code='', env=None):
    """Run ``code`` then ``REPORT`` in a fresh interpreter; returns the report as a dict."""
    result = check_python(['-c', code + REPORT], env=env)
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_stand_in_provides_rgb_to_grayscale():
    import torchvision.transforms.functional as F

    module = sys.modules[compat.FUNCTIONAL_TENSOR]
    if getattr(module, '__file__', None) is None:  # the stand-in (torchvision >= 0.17)
        assert module.rgb_to_grayscale is F.rgb_to_grayscale
    assert compat.install_functional_tensor_stand_in() is False  # already there: nothing to do


def test_apply_is_idempotent():
    import basicsr.train

    before = (BaseModel.model_ema, options.parse_options, basicsr.train.load_resume_state)
    assert compat.apply() and compat.apply()  # a second full pass: each shim notices it is in place
    assert (BaseModel.model_ema, options.parse_options, basicsr.train.load_resume_state) == before
    assert BaseModel.model_ema.__wrapped__.__qualname__ == 'BaseModel.model_ema'


def test_hook_loads_plugin_on_import_basicsr():
    state = report('import basicsr\n')
    assert state['hook_imported'], NOT_INSTALLED
    assert 'deconv_basicsr' in state['modules']
    assert state['FastDeconv']  # registered by deconv_basicsr.archs: the mechanism works
    assert state['DeconvEDSR']
    assert not state['hook_installed']  # one shot


def test_importing_plugin_first_works_with_hook():
    state = report('import deconv_basicsr.plugin, basicsr\n')
    assert state['DeconvEDSR'] and not state['hook_installed']


def test_importing_the_archs_first_works_with_hook():
    """``deconv_basicsr.archs`` imports BasicSR through the hook, which loads the whole plugin (the model too)."""
    state = report('import deconv_basicsr.archs\n'
                   'from basicsr.utils.registry import MODEL_REGISTRY\n'
                   'assert "DeconvSRModel" in MODEL_REGISTRY\n')
    assert state['DeconvEDSR'] and not state['hook_installed']


def test_layers_import_no_basicsr():
    state = report('import deconv_basicsr.layers\nimport deconv_basicsr\n')
    assert 'torch' in state['modules'] and 'basicsr' not in state['modules']
    assert state['hook_installed']  # basicsr not imported yet: the hook still waits for it


def test_another_basicsr_version_gets_a_warning_and_no_shims(monkeypatch):
    import basicsr
    import basicsr.train

    from deconv_basicsr.compat import resume

    monkeypatch.setattr(basicsr, '__version__', '1.4.3')
    monkeypatch.setattr(resume, 'install', lambda: pytest.fail('a shim was installed'))
    with pytest.warns(RuntimeWarning, match='targets BasicSR 1.4.2, found 1.4.3'):
        assert compat.apply() is False


def test_process_without_basicsr_pays_nothing():
    state = report('import json, os\n')
    assert state['hook_imported'], NOT_INSTALLED
    assert state['hook_installed']
    assert state['modules'] == []  # no torch, basicsr or deconv_basicsr


def test_env_var_switches_hook_off():
    env = subprocess_env(DECONV_BASICSR_AUTOLOAD='0')
    state = report(MANUAL_STAND_IN + 'import basicsr\n', env=env)
    assert state['hook_imported'], NOT_INSTALLED
    assert not state['hook_installed']
    assert 'basicsr' in state['modules'] and 'deconv_basicsr' not in state['modules']
    assert not state['FastDeconv']
    # Explicit import still works, stand-in included.
    state = report('import deconv_basicsr.plugin, basicsr\n', env=env)
    assert state['DeconvEDSR']


def _save_resume_state(path, iteration):
    net = nn.Conv2d(3, 3, 3)
    optimizer = torch.optim.Adam(net.parameters(), 1e-3, betas=(0.9, 0.99))
    net(torch.rand(1, 3, 8, 8)).mean().backward()
    optimizer.step()
    scheduler = MultiStepRestartLR(optimizer, milestones=[2], gamma=0.5)  # its state holds a Counter
    state = {'epoch': 0, 'iter': iteration, 'optimizers': [optimizer.state_dict()],
             'schedulers': [scheduler.state_dict()]}
    torch.save(state, path)


def _train_opt(tmp_path, auto_resume=False, resume_state=None):
    root = tmp_path / 'experiments' / 'tiny'
    return {
        'name': 'tiny', 'num_gpu': 0, 'auto_resume': auto_resume, 'network_g': {'type': 'EDSR'},
        'path': {'resume_state': resume_state, 'models': str(root / 'models'),
                 'training_states': str(root / 'training_states')},
    }


def test_load_resume_state_on_cpu(tmp_path):
    import basicsr.train

    path = tmp_path / '3.state'
    _save_resume_state(path, 3)
    opt = _train_opt(tmp_path, resume_state=str(path))
    state = basicsr.train.load_resume_state(opt)  # BasicSR's own name, patched
    assert state['iter'] == 3
    exp_avg = state['optimizers'][0]['state'][0]['exp_avg']
    assert exp_avg.device.type == 'cpu'
    # check_resume ran: the network is reloaded from the checkpoint of the resumed iteration.
    assert opt['path']['pretrain_network_g'].endswith('net_g_3.pth')


def test_auto_resume_picks_latest_state(tmp_path):
    opt = _train_opt(tmp_path, auto_resume=True)
    assert compat.load_resume_state(opt) is None  # nothing saved yet
    states = tmp_path / 'experiments' / 'tiny' / 'training_states'
    states.mkdir(parents=True)
    for iteration in (2, 10, 4):
        _save_resume_state(states / f'{iteration}.state', iteration)
    state = compat.load_resume_state(opt)
    assert state['iter'] == 10
    assert opt['path']['resume_state'] == str(states / '10.state')


def test_resume_device():
    assert compat.resume_device({'num_gpu': 0}) == torch.device('cpu')
    if not torch.cuda.is_available():
        assert compat.resume_device({'num_gpu': 1}) == torch.device('cpu')


def test_main_train_script_is_patched(monkeypatch):
    def load_resume_state(opt):
        raise AssertionError('the unpatched copy ran')

    def train_pipeline(root_path):
        pass

    main = types.ModuleType('__main__')
    for func in (load_resume_state, train_pipeline):
        func.__module__ = '__main__'
        setattr(main, func.__name__, func)
    monkeypatch.setitem(sys.modules, '__main__', main)
    assert options.parse_options.__wrapped__.__module__ == 'basicsr.utils.options'
    with pytest.raises(SystemExit):  # BasicSR's parse_options, after the shim, on pytest's command line
        options.parse_options('.', is_train=True)
    assert main.load_resume_state is compat.load_resume_state

    # A script that only uses BasicSR's train_pipeline is left alone.
    other = types.ModuleType('__main__')
    other.train_pipeline = train_pipeline
    monkeypatch.setitem(sys.modules, '__main__', other)
    assert not replace_in_main_script('load_resume_state', compat.load_resume_state)


class _TinyModel(BaseModel):
    """A BaseModel with a net_g and a net_g_ema, as SRModel builds them."""

    def __init__(self, net_g, net_g_ema):
        super().__init__({'num_gpu': 0, 'is_train': True, 'dist': False})
        self.net_g, self.net_g_ema = net_g, net_g_ema


def _tiny_net(seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), FastDeconv(8, 3, 3, padding=1, block=8))


def test_model_ema_copies_buffers():
    model = _TinyModel(_tiny_net(0), _tiny_net(1).eval())
    model.model_ema(0)  # what SRModel does when it builds net_g_ema
    for (key, ema), value in zip(model.net_g_ema.state_dict().items(), model.net_g.state_dict().values()):
        assert torch.equal(ema, value), key

    # Train net_g: parameters and running statistics move.
    optimizer = torch.optim.SGD(model.net_g.parameters(), lr=0.1)
    for _ in range(3):
        optimizer.zero_grad()
        model.net_g(torch.rand(2, 3, 12, 12)).square().mean().backward()
        optimizer.step()
    old_ema = {key: value.clone() for key, value in model.net_g_ema.state_dict().items()}
    model.model_ema(0.5)

    params = dict(model.net_g.named_parameters())
    for key, ema in model.net_g_ema.named_parameters():  # averaged
        assert torch.allclose(ema, 0.5 * old_ema[key] + 0.5 * params[key]), key
    buffers = dict(model.net_g.named_buffers())
    assert buffers['2.num_batches_tracked'] == 3 and buffers['1.num_batches_tracked'] == 3
    for key, ema in model.net_g_ema.named_buffers():  # copied
        assert torch.equal(ema, buffers[key]), key
