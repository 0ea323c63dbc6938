"""Tiny trained networks: a few Adam steps in train mode give the FastDeconv layers running statistics away
from their initial ones, so fusing them is not a no-op.

* ``deconv_edsr_checkpoint``: ``(path, network_g)`` of a DeconvEDSR x2 checkpoint, saved as BasicSR saves
  one (``params`` and ``params_ema``).
* ``train_tiny``: the function that trains them, ``train_tiny(network_g, channels=3, scale=2)``.
"""
import pytest
import torch
import torch.nn.functional as F

import deconv_basicsr.plugin  # noqa: F401  (BasicSR importable, the archs registered)
from basicsr.archs import build_network

from helpers import tiny_network


def _train_tiny(network_g, channels=3, scale=2, steps=5, seed=0):
    """``network_g`` built and trained ``steps`` Adam steps on random patches (L1 to their bicubic upscaling)."""
    torch.manual_seed(seed)
    net = build_network(dict(network_g))
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(steps):
        lq = torch.rand(2, channels, 12, 12)
        gt = F.interpolate(lq, scale_factor=scale, mode='bicubic', align_corners=False)
        optimizer.zero_grad()
        F.l1_loss(net(lq), gt).backward()
        optimizer.step()
    return net.eval()


@pytest.fixture(scope='session')
def train_tiny():
    """``train_tiny(network_g, channels=3, scale=2)``: the network, trained a few steps, in eval mode."""
    return _train_tiny


@pytest.fixture(scope='session')
def deconv_edsr_checkpoint(tmp_path_factory):
    """``(path, network_g)`` of a trained tiny DeconvEDSR x2 (1 block, 8 features), EMA as a second net."""
    network_g = tiny_network('DeconvEDSR')
    path = tmp_path_factory.mktemp('checkpoint') / 'net_g_latest.pth'
    torch.save({'params': _train_tiny(network_g).state_dict(),
                'params_ema': _train_tiny(network_g, seed=1).state_dict()}, path)
    return path, network_g
