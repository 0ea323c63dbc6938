"""Many processes on the CPU: synchronised FastDeconv statistics and BasicSR's launcher with Gloo.

* ``sync_stats``: two Gloo processes (``torch.multiprocessing``), each on half of a batch, against one
  process on the whole batch: running statistics, outputs, input gradients and (all-reduced) weight
  gradients are the same.
* ``torchrun --nproc_per_node=2 -m deconv_basicsr.train ... --launcher pytorch`` trains a tiny network on
  the CPU and writes its checkpoints.
"""
import socket

import pytest
import torch
import torch.multiprocessing as mp
from torch import distributed as dist
from torch import nn

import deconv_basicsr.plugin  # noqa: F401  (BasicSR importable, the archs and the model registered)
from basicsr.archs import build_network

from deconv_basicsr.layers import FastDeconv
from helpers import check_python, sr_options, tiny_network, write_image_pairs, write_options

WORLD_SIZE = 2


def _network(sync_stats):
    """A 3x3 layer with interleaved blocks (16 channels, block 4), then a 1x1 layer.

    Inputs are 2 images of 6x6 per process: 72 positions, a multiple of the 1x1 layer's sampling step 9, so
    its samples of half batches are those of the whole batch (see ``deconv_basicsr.layers.sync``).
    """
    torch.manual_seed(0)
    return nn.Sequential(
        FastDeconv(16, 8, 3, padding=1, block=4, sync_stats=sync_stats), nn.ReLU(),
        FastDeconv(8, 3, 1, block=8, sync_stats=sync_stats)).double()


def _batch():
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(2 * WORLD_SIZE, 16, 6, 6, generator=generator, dtype=torch.float64) * 3 + 1
    target = torch.randn(2 * WORLD_SIZE, 3, 6, 6, generator=generator, dtype=torch.float64)
    return x, target


def _step(net, x, target):
    """Two training steps (the second whitens with statistics of a network that moved); returns the results."""
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    for _ in range(2):
        x = x.detach().requires_grad_()
        optimizer.zero_grad()
        output = net(x)
        (output * target).sum().backward()  # a sum over images: per-process losses add up to the whole
        grads = [p.grad.clone() for p in net.parameters()]
        if dist.is_initialized():
            for grad in grads:
                dist.all_reduce(grad)
            for p, grad in zip(net.parameters(), grads):
                p.grad.copy_(grad)
        optimizer.step()
    return {'output': output.detach(), 'input_grad': x.grad, 'grads': grads,
            'buffers': {k: v.clone() for k, v in net.state_dict().items() if 'running' in k}}


def _sync_worker(rank, init_file, results):
    dist.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank, world_size=WORLD_SIZE)
    try:
        x, target = _batch()
        part = slice(2 * rank, 2 * rank + 2)
        torch.save(_step(_network(sync_stats=True), x[part], target[part]), f'{results}.{rank}')
    finally:
        dist.destroy_process_group()


def test_sync_stats_equal_one_process_on_the_whole_batch(tmp_path):
    mp.spawn(_sync_worker, args=(str(tmp_path / 'init'), str(tmp_path / 'result')), nprocs=WORLD_SIZE)
    parts = [torch.load(tmp_path / f'result.{rank}') for rank in range(WORLD_SIZE)]
    whole = _step(_network(sync_stats=True), *_batch())  # no process group here: local statistics

    def close(a, b):
        return torch.allclose(a, b, rtol=1e-9, atol=1e-11)

    assert close(torch.cat([p['output'] for p in parts]), whole['output'])
    assert close(torch.cat([p['input_grad'] for p in parts]), whole['input_grad'])
    for part in parts:
        for a, b in zip(part['grads'], whole['grads']):
            assert close(a, b)
        for key, value in whole['buffers'].items():
            assert close(part['buffers'][key], value), key


def test_without_sync_the_statistics_are_per_process(tmp_path):
    """The comparison above is not vacuous: half batches have statistics of their own."""
    x, _ = _batch()
    layer = _network(sync_stats=False)[0]
    layer(x[:2])
    half = layer.running_deconv.clone()
    layer.reset_running_stats()
    layer(x)
    assert not torch.allclose(half, layer.running_deconv, rtol=1e-3)


@pytest.mark.parametrize('spec', [
    {'type': 'DeconvEDSR', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_block': 1, 'upscale': 2},
    {'type': 'DeconvSRCNN', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': [8, 8], 'kernel_size': [5, 3, 3]},
    {'type': 'DeconvNet', 'arch': {'type': 'MSRResNet', 'num_feat': 8, 'num_block': 1, 'upscale': 2},
     'include': ['body.*']},
], ids=lambda spec: spec['type'])
def test_sync_stats_is_an_option_of_every_arch(spec):
    net = build_network({**spec, 'sync_stats': True})
    layers = [m for m in net.modules() if isinstance(m, FastDeconv)]
    assert layers and all(layer.sync_stats for layer in layers)
    assert not any(m.sync_stats for m in build_network(dict(spec)).modules() if isinstance(m, FastDeconv))


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_torchrun_trains_on_two_cpu_processes(tmp_path):
    """BasicSR's launcher path on the CPU: Gloo, DistributedDataParallel without devices, validation on
    rank 0 with the bare network (no EMA), synchronised statistics, checkpoints and training states."""
    gt_dir, lq_dir = write_image_pairs(tmp_path / 'data', num_images=4)
    network_g = tiny_network('DeconvEDSR', sync_stats=True)
    opt = sr_options('tiny_dist', gt_dir, lq_dir, network_g, total_iter=4, checkpoint_freq=2, val_freq=2,
                     ema_decay=0)
    options = write_options(tmp_path / 'tiny.yml', opt)
    result = check_python([
        '-m', 'torch.distributed.run', f'--nproc_per_node={WORLD_SIZE}', '--master_addr=127.0.0.1',
        f'--master_port={_free_port()}', '-m', 'deconv_basicsr.train', '-opt', options, '--launcher', 'pytorch'
    ], cwd=tmp_path, timeout=300)
    assert 'World size (gpu number): 2' in result.stdout and 'psnr' in result.stdout
    experiment = tmp_path / 'experiments' / 'tiny_dist'
    assert (experiment / 'models' / 'net_g_latest.pth').is_file()
    state = torch.load(experiment / 'training_states' / '4.state')
    assert state['iter'] == 4 and len(state['rng_states']) == WORLD_SIZE
    saved = torch.load(experiment / 'models' / 'net_g_4.pth')['params']
    assert all(saved[k] == 4 for k in saved if k.endswith('num_batches_tracked'))
