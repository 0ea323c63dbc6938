"""Defect: the EMA network keeps its initial buffers.

BasicSR 1.4.2's ``BaseModel.model_ema`` averages ``net_g``'s parameters into ``net_g_ema`` and ignores
buffers, so the running statistics of ``net_g_ema`` (BatchNorm's, FastDeconv's running mean, whitening
matrix and step counter) keep their initial values, and validation and the saved ``params_ema`` use them.
``model_ema`` is wrapped to copy the buffers after averaging. Copied, not averaged: running statistics
describe the activations of the current network and are running averages already. ``SRModel`` calls
``model_ema(0)`` when it builds ``net_g_ema``, so the copy also covers initialisation.
"""
import torch

from deconv_basicsr.compat.patching import wrap


def model_ema(original, self, decay=0.999):
    original(self, decay)
    ema_buffers = dict(self.net_g_ema.named_buffers())
    with torch.no_grad():
        for name, buffer in self.get_bare_model(self.net_g).named_buffers():
            if name in ema_buffers:
                ema_buffers[name].copy_(buffer)


def install():
    from basicsr.models.base_model import BaseModel

    wrap(BaseModel, 'model_ema', model_ema)
