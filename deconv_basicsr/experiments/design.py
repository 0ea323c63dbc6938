"""The study's design: arms, presets, and the BasicSR options of every run.

A *run* trains one arm (a network) at one learning rate with one seed. The two arms of a pair share the
seed, hence the initial weights of every layer they have in common (DeconvSRCNN and DeconvEDSR build their
plain twin first and convert it), the batches (BasicSR's sampler and the per-sample augmentation seeds) and
the schedule. A *diagnosis* run changes one thing of the deconvolved SRCNN at the learning rate where it
became unstable.
"""
from copy import deepcopy
from dataclasses import dataclass, field

# Networks by arm name. SRCNN is the 9-5-5 network with 64 and 32 filters; EDSR is a small EDSR (4 blocks
# of 32 features) that a CPU trains in minutes.
_SRCNN = {'type': 'SRCNN', 'num_in_ch': 3, 'num_out_ch': 3}
_EDSR = {'type': 'EDSR', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 32, 'num_block': 4, 'res_scale': 1,
         'img_range': 255.0, 'rgb_mean': [0.4488, 0.4371, 0.4040]}
ARMS = {
    'srcnn': _SRCNN,
    'dsrcnn_c2': {**_SRCNN, 'type': 'DeconvSRCNN', 'deconv_layers': [2], 'block': 16},
    'dsrcnn_c12': {**_SRCNN, 'type': 'DeconvSRCNN', 'deconv_layers': [1, 2], 'block': 16},
    'dsrcnn_c123': {**_SRCNN, 'type': 'DeconvSRCNN', 'deconv_layers': [1, 2, 3], 'block': 16},
    'dsrcnn_c12_same': {**_SRCNN, 'type': 'DeconvSRCNN', 'deconv_layers': [1, 2], 'block': 16,
                        'input_layer': 'same'},
    'edsr': _EDSR,
    'dedsr': {**_EDSR, 'type': 'DeconvEDSR', 'block': 32},
}
ARM_LABELS = {
    'srcnn': 'SRCNN',
    'dsrcnn_c2': 'DeconvSRCNN conv2',
    'dsrcnn_c12': 'DeconvSRCNN conv1+2',
    'dsrcnn_c123': 'DeconvSRCNN conv1+2+3',
    'dsrcnn_c12_same': 'DeconvSRCNN conv1+2, input layer as the others',
    'edsr': 'EDSR',
    'dedsr': 'DeconvEDSR',
}
# Each family: its baseline arm and its deconvolved variants.
FAMILIES = {
    'srcnn': ('srcnn', ('dsrcnn_c2', 'dsrcnn_c12', 'dsrcnn_c123', 'dsrcnn_c12_same')),
    'edsr': ('edsr', ('dedsr', )),
}
# One change each to the deconvolved SRCNN (conv2 arm) at the diagnosis learning rate: network settings,
# or the optimizer. 'sgd*' runs train the baseline too.
DIAGNOSES = {
    'sampling_stride1': {'network': {'sampling_stride': 1}},
    'stats_period8': {'network': {'stats_period': 8}},
    'eps1e-2': {'network': {'eps': 1e-2}},
    'stats_nograd': {'network': {'stats_grad': False}},
    'block8': {'network': {'block': 8}},
    'sgd1e-2': {'optim': {'type': 'SGD', 'lr': 1e-2, 'momentum': 0.9}},
    'sgd1e-1': {'optim': {'type': 'SGD', 'lr': 1e-1, 'momentum': 0.9}},
    'block32': {'network': {'block': 32}},
}


@dataclass(frozen=True)
class Run:
    """One training run: an arm at a learning rate with a seed, possibly under a diagnosis."""
    family: str
    arm: str
    lr: float
    seed: int
    diagnosis: str = ''

    @property
    def name(self):
        tail = f'_{self.diagnosis}' if self.diagnosis else ''
        return f'{self.arm}_lr{self.lr:g}_s{self.seed}{tail}'

    @property
    def is_baseline(self):
        return self.arm == FAMILIES[self.family][0]


@dataclass
class Preset:
    """Sizes and schedule of a study. ``families`` maps a family to the variants it runs."""
    description: str
    families: dict
    lrs: dict  # family -> learning rates swept
    seeds: int
    iters: dict  # family -> iterations
    gt_size: dict  # family -> HR crop size
    batch_size: int
    val_freq: int
    milestones: tuple  # fractions of the iterations where the learning rate halves
    train_set: str
    val_set: str
    val_images: int  # the first N images of val_set
    val_crop: int  # HR centre crop size of each validation image
    test_sets: tuple
    top_variants: int  # variants carried from the screening to all seeds
    diagnoses: tuple = ()
    diagnosis_lr: float = 1e-3
    recalibrate_batches: int = 16
    scale: int = 2
    print_freq: int = 50
    networks: dict = field(default_factory=dict)  # arm -> size overrides


PRESETS = {
    'smoke': Preset(
        description='one SRCNN variant, two learning rates, two seeds, a few iterations on the embedded '
        'dataset: the code path of the study in a minute',
        families={'srcnn': ('dsrcnn_c2', )}, lrs={'srcnn': (1e-3, 1e-4)}, seeds=2, iters={'srcnn': 8},
        gt_size={'srcnn': 32}, batch_size=4, val_freq=4, milestones=(), train_set='Embedded',
        val_set='Embedded_valid', val_images=3, val_crop=64, test_sets=('Embedded_valid', ), top_variants=1,
        recalibrate_batches=2, print_freq=4,
        networks={arm: {'num_feat': [8, 8], 'kernel_size': [5, 3, 3]} for arm in ('srcnn', 'dsrcnn_c2')}),
    'cpu': Preset(
        description='SRCNN against four DeconvSRCNN variants and a small EDSR against DeconvEDSR, a learning '
        'rate sweep and three seeds, sized for 2 CPU cores (about 7-8 hours); train on T91, validate on '
        'Urban100 crops, test on Set5, Set14 and B100',
        families={'srcnn': FAMILIES['srcnn'][1], 'edsr': FAMILIES['edsr'][1]},
        lrs={'srcnn': (1e-4, 3e-4, 1e-3), 'edsr': (1e-4, 5e-4)}, seeds=3, iters={'srcnn': 2000, 'edsr': 4000},
        gt_size={'srcnn': 32, 'edsr': 64}, batch_size=16, val_freq=100, milestones=(0.5, 0.75), train_set='T91',
        val_set='Urban100', val_images=10, val_crop=192, test_sets=('Set5', 'Set14', 'B100'), top_variants=2,
        diagnoses=tuple(DIAGNOSES)),
}


def network_options(preset, arm, diagnosis=''):
    net = deepcopy(ARMS[arm])
    net.update(deepcopy(preset.networks.get(arm, {})))
    if diagnosis and ARMS[arm]['type'] not in ('SRCNN', 'EDSR'):
        net.update(DIAGNOSES[diagnosis].get('network', {}))
    net['upscale'] = preset.scale
    return net


def train_options(preset, run, datasets):
    """BasicSR training options of ``run`` (``datasets``: BasicSR options of the 'train' and 'val' sets)."""
    iters = preset.iters[run.family]
    optim = {'type': 'Adam', 'lr': run.lr, 'weight_decay': 0, 'betas': [0.9, 0.99]}
    if run.diagnosis:
        optim = {**optim, **DIAGNOSES[run.diagnosis].get('optim', {})}
        if optim['type'] == 'SGD':
            optim.pop('betas')
    train = {**datasets['train'], 'phase': 'train', 'gt_size': preset.gt_size[run.family], 'use_hflip': True,
             'use_rot': True, 'num_worker_per_gpu': 1, 'batch_size_per_gpu': preset.batch_size,
             'dataset_enlarge_ratio': 100, 'prefetch_mode': None}
    return {
        # DeconvSRModel recalibrates FastDeconv statistics before each validation; without FastDeconv
        # layers (the baselines) it is SRModel.
        'name': run.name, 'model_type': 'DeconvSRModel', 'scale': preset.scale, 'num_gpu': 'auto',
        'manual_seed': run.seed,
        'datasets': {'train': train, 'val': {**datasets['val'], 'phase': 'val'}},
        'network_g': network_options(preset, run.arm, run.diagnosis),
        'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None},
        'train': {
            'ema_decay': 0, 'optim_g': optim,
            'scheduler': {'type': 'MultiStepLR', 'milestones': [int(f * iters) for f in preset.milestones] or [10**9],
                          'gamma': 0.5},
            'total_iter': iters, 'warmup_iter': -1,
            'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'},
        },
        'val': {'val_freq': preset.val_freq, 'save_img': False, 'recalibrate_batches': preset.recalibrate_batches,
                'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': preset.scale, 'test_y_channel': True}}},
        'logger': {'print_freq': preset.print_freq, 'save_checkpoint_freq': preset.val_freq, 'use_tb_logger': True,
                   'wandb': {'project': None, 'resume_id': None}},
        'dist_params': {'backend': 'nccl', 'port': 29500},
    }


def test_options(preset, run, test_sets, template):
    """BasicSR test options of ``run``'s final checkpoint on ``test_sets`` (name -> dataset options), from the
    project's test option file ``template`` (its metrics and settings; datasets and network replaced)."""
    opt = deepcopy(template)
    opt['name'] = f'test_{run.name}'
    opt['scale'] = preset.scale
    opt['datasets'] = {f'test_{i + 1}': {**ds, 'phase': 'test'} for i, ds in enumerate(test_sets.values())}
    opt['network_g'] = network_options(preset, run.arm, run.diagnosis)
    opt['path'] = {'pretrain_network_g': f'experiments/{run.name}/models/net_g_latest.pth', 'param_key_g': 'params',
                   'strict_load_g': True}
    return opt
