"""Defect: BasicSR 1.4.2 trains with Adam only.

``BaseModel.get_optimizer`` builds ``torch.optim.Adam`` and raises ``NotImplementedError`` for any other
``optim_g.type``, so SGD with momentum (Ye et al.'s optimizer) cannot be set from an option file. Later
BasicSR versions accept more names; the replacement builds any optimizer of ``torch.optim`` by its class
name, with the option file's remaining keys as its arguments, and names the choices when the name is unknown.
"""
import torch

from deconv_basicsr.compat.patching import replace


def optimizer_names():
    return sorted(name for name, value in vars(torch.optim).items()
                  if isinstance(value, type) and issubclass(value, torch.optim.Optimizer)
                  and value is not torch.optim.Optimizer)


def get_optimizer(self, optim_type, params, lr, **kwargs):
    if optim_type not in optimizer_names():
        raise ValueError(f"optim type {optim_type!r} is not an optimizer of torch.optim; choose one of "
                         f"{', '.join(optimizer_names())}")
    return getattr(torch.optim, optim_type)(params, lr, **kwargs)


def install():
    from basicsr.models.base_model import BaseModel

    replace(BaseModel, 'get_optimizer', get_optimizer)
