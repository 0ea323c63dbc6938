"""Defect: ``import basicsr`` fails with torchvision >= 0.17.

BasicSR 1.4.2's ``basicsr/data/degradations.py`` does
``from torchvision.transforms.functional_tensor import rgb_to_grayscale``; torchvision 0.17 removed that
module. Nothing of BasicSR is replaced: a stand-in module that exposes the same function from the public
``torchvision.transforms.functional`` is installed before BasicSR is first imported.
"""
import importlib.util
import sys
import types

#: The torchvision module that BasicSR 1.4.2 imports and torchvision >= 0.17 no longer has.
FUNCTIONAL_TENSOR = 'torchvision.transforms.functional_tensor'


def install_functional_tensor_stand_in():
    """Provide ``torchvision.transforms.functional_tensor`` if this torchvision lacks it.

    Returns:
        bool: True if the stand-in was installed by this call.
    """
    if FUNCTIONAL_TENSOR in sys.modules or importlib.util.find_spec(FUNCTIONAL_TENSOR) is not None:
        return False
    from torchvision.transforms import functional

    stand_in = types.ModuleType(
        FUNCTIONAL_TENSOR, 'Stand-in installed by deconv_basicsr.compat for BasicSR 1.4.2 '
        '(torchvision >= 0.17 removed this module).')
    stand_in.rgb_to_grayscale = functional.rgb_to_grayscale
    sys.modules[FUNCTIONAL_TENSOR] = stand_in
    return True
