"""The study's design: arms, presets, and the BasicSR options of every run.

A *condition* is one comparison of the paper's: a family's pair (baseline, deconvolved) at a learning rate
and a length, over several seeds. A *run* trains one arm of a pair with one seed. The two arms of a pair
share the seed, hence the initial weights of every layer they have in common (DeconvSRCNN and DeconvEDSR
build their plain twin first and convert it), the batches (the data order and the per-sample augmentation
seeds, both drawn from the seed: ``deconv_basicsr.training.data_order``) and the schedule. Seeds differ in all
of these.
"""
from copy import deepcopy
from dataclasses import dataclass, field

# Networks by arm name. SRCNN is the 9-5-5 network with 64 and 32 filters; EDSR is a small EDSR (4 blocks
# of 32 features) that a CPU trains in minutes. The deconvolved arms are the defaults the previous study chose
# on validation (docs/study.md): conv2 alone in blocks of 16; the residual blocks in blocks of 32.
_SRCNN = {'type': 'SRCNN', 'num_in_ch': 3, 'num_out_ch': 3}
_EDSR = {'type': 'EDSR', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 32, 'num_block': 4, 'res_scale': 1,
         'img_range': 255.0, 'rgb_mean': [0.4488, 0.4371, 0.4040]}
ARMS = {
    'srcnn': _SRCNN,
    'dsrcnn_c2': {**_SRCNN, 'type': 'DeconvSRCNN', 'deconv_layers': [2], 'block': 16},
    'edsr': _EDSR,
    'dedsr': {**_EDSR, 'type': 'DeconvEDSR', 'block': 32},
}
ARM_LABELS = {'srcnn': 'SRCNN', 'dsrcnn_c2': 'DeconvSRCNN (conv2)', 'edsr': 'EDSR', 'dedsr': 'DeconvEDSR'}
# Each family: its baseline arm and its deconvolved arm, the pair the paper compares.
PAIRS = {'srcnn': ('srcnn', 'dsrcnn_c2'), 'edsr': ('edsr', 'dedsr')}


@dataclass(frozen=True)
class Run:
    """One training run: an arm at a learning rate, for a number of iterations, with a seed."""
    family: str
    arm: str
    lr: float
    iters: int
    seed: int

    @property
    def name(self):
        return f'{self.arm}_lr{self.lr:g}_it{self.iters}_s{self.seed}'

    @property
    def is_baseline(self):
        return self.arm == PAIRS[self.family][0]

    @property
    def condition(self):
        return self.family, self.lr, self.iters


@dataclass(frozen=True)
class Condition:
    """One comparison: a family's pair at a learning rate and a length, over ``seeds`` seeds (0 to seeds - 1)."""
    family: str
    lr: float
    iters: int
    seeds: int

    @property
    def key(self):
        return self.family, self.lr, self.iters

    @property
    def label(self):
        return f'{self.family.upper()}, Adam {self.lr:g}, {self.iters} it'

    def runs(self, seed):
        """Both arms of the pair with ``seed``, baseline first."""
        return [Run(self.family, arm, self.lr, self.iters, seed) for arm in PAIRS[self.family]]


@dataclass
class Preset:
    """Sizes and schedule of a study: its conditions, and what every run shares."""
    description: str
    conditions: tuple  # Condition, in the order their seeds are trained
    gt_size: dict  # family -> HR crop size
    batch_size: int
    val_freq: int
    milestones: tuple  # fractions of the iterations where the learning rate halves
    train_set: str
    val_set: str
    val_images: int  # the first N images of val_set
    val_crop: int  # HR centre crop size of each validation image
    test_sets: tuple
    recalibrate_batches: int = 16
    scale: int = 2
    print_freq: int = 50
    networks: dict = field(default_factory=dict)  # arm -> size overrides
    verdicts: bool = True  # False: a code-path check whose figures decide nothing

    @property
    def families(self):
        return list(dict.fromkeys(c.family for c in self.conditions))

    def runs(self):
        """Every run, in training order: seed by seed, each seed over the conditions that have it, so that a
        study stopped early holds the same number of seeds everywhere."""
        rounds = max(c.seeds for c in self.conditions)
        return [run for seed in range(rounds) for c in self.conditions if seed < c.seeds for run in c.runs(seed)]


PRESETS = {
    'smoke': Preset(
        description='SRCNN against DeconvSRCNN at two learning rates and two lengths, two seeds, a few iterations '
        'on the embedded dataset: the code path of the study in a minute',
        conditions=(Condition('srcnn', 1e-3, 8, 2), Condition('srcnn', 1e-4, 12, 2)),
        gt_size={'srcnn': 32}, batch_size=4, val_freq=4, milestones=(0.5, ), train_set='Embedded',
        val_set='Embedded_valid', val_images=3, val_crop=64, test_sets=('Embedded_valid', ), recalibrate_batches=2,
        print_freq=4, networks={arm: {'num_feat': [8, 8], 'kernel_size': [5, 3, 3]} for arm in ('srcnn', 'dsrcnn_c2')},
        verdicts=False),
    'cpu': Preset(
        description='SRCNN against DeconvSRCNN at four learning rates (8 seeds, 2000 iterations) and at 1e-4 for '
        '10000 iterations (5 seeds); a small EDSR against DeconvEDSR at 5e-4 (6 seeds) and 1e-4 (3 seeds), 4000 '
        'iterations; about 11 hours on 2 CPU cores; train on T91, validate on Urban100 crops, test on '
        'Set5, Set14 and B100',
        conditions=(Condition('srcnn', 1e-4, 2000, 8), Condition('srcnn', 3e-4, 2000, 8),
                    Condition('srcnn', 1e-3, 2000, 8), Condition('srcnn', 3e-3, 2000, 8),
                    Condition('edsr', 5e-4, 4000, 6), Condition('edsr', 1e-4, 4000, 3),
                    Condition('srcnn', 1e-4, 10000, 5)),
        gt_size={'srcnn': 32, 'edsr': 64}, batch_size=16, val_freq=100, milestones=(0.5, 0.75), train_set='T91',
        val_set='Urban100', val_images=10, val_crop=192, test_sets=('Set5', 'Set14', 'B100')),
}


def network_options(preset, arm):
    net = deepcopy(ARMS[arm])
    net.update(deepcopy(preset.networks.get(arm, {})))
    net['upscale'] = preset.scale
    return net


def train_options(preset, run, datasets):
    """BasicSR training options of ``run`` (``datasets``: BasicSR options of the 'train' and 'val' sets)."""
    iters = run.iters
    optim = {'type': 'Adam', 'lr': run.lr, 'weight_decay': 0, 'betas': [0.9, 0.99]}
    # PairedImageDataset's samples, each image decoded once per worker (docs/data.md).
    train = {**datasets['train'], 'type': 'CachedPairedImageDataset', 'phase': 'train',
             'gt_size': preset.gt_size[run.family], 'use_hflip': True,
             'use_rot': True, 'num_worker_per_gpu': 1, 'batch_size_per_gpu': preset.batch_size,
             'dataset_enlarge_ratio': 100, 'prefetch_mode': None}
    return {
        # DeconvSRModel recalibrates FastDeconv statistics before each validation; without FastDeconv
        # layers (the baselines) it is SRModel.
        'name': run.name, 'model_type': 'DeconvSRModel', 'scale': preset.scale, 'num_gpu': 'auto',
        'manual_seed': run.seed,
        'datasets': {'train': train, 'val': {**datasets['val'], 'phase': 'val'}},
        'network_g': network_options(preset, run.arm),
        'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None},
        'train': {
            'ema_decay': 0, 'optim_g': optim,
            'scheduler': {'type': 'MultiStepLR', 'milestones': [int(f * iters) for f in preset.milestones] or [10**9],
                          'gamma': 0.5},
            'total_iter': iters, 'warmup_iter': -1,
            'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'},
        },
        # The deconvolved arm is also validated on its moving averages, as the reference layer would be.
        'val': {'val_freq': preset.val_freq, 'save_img': False, 'recalibrate_batches': preset.recalibrate_batches,
                'validate_running_stats': True,
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
    opt['network_g'] = network_options(preset, run.arm)
    opt['path'] = {'pretrain_network_g': f'experiments/{run.name}/models/net_g_latest.pth', 'param_key_g': 'params',
                   'strict_load_g': True}
    return opt
