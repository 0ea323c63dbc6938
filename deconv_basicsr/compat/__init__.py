"""Fixes that BasicSR 1.4.2 needs to run at all with torch >= 2.6 and torchvision >= 0.17, one module per defect:

* ``torchvision_stand_in``: ``import basicsr`` fails with torchvision >= 0.17;
* ``resume``: resuming crashes without a GPU, and ``--auto_resume`` looks in the wrong folder;
* ``ema_buffers``: the EMA network keeps its initial buffers (``BaseModel.model_ema``).

Each targets BasicSR ``BASICSR_VERSION``, the latest release (none later exists that fixes them). On another
version ``apply()`` installs only the stand-in, where torchvision lacks the module, and warns. A run that neither
resumes nor keeps an EMA of a network with buffers trains exactly as with BasicSR alone. The project's features
(exact resume, Ctrl-C, start-up checks, ...) are in ``deconv_basicsr.training``, not here. The stand-in must
exist before BasicSR is first imported, so the modules import BasicSR inside their functions only.
"""
import warnings

from deconv_basicsr.compat import ema_buffers, resume
from deconv_basicsr.compat.resume import load_resume_state, resume_device
from deconv_basicsr.compat.torchvision_stand_in import FUNCTIONAL_TENSOR, install_functional_tensor_stand_in

#: The BasicSR release the shims are written against.
BASICSR_VERSION = '1.4.2'

__all__ = ['apply', 'BASICSR_VERSION', 'FUNCTIONAL_TENSOR', 'install_functional_tensor_stand_in',
           'load_resume_state', 'resume_device']


def apply():
    """Install the torchvision stand-in, import BasicSR and, on BasicSR 1.4.2, install the shims (idempotent).

    Returns:
        bool: Whether the shims are in place (False on another BasicSR version).
    """
    install_functional_tensor_stand_in()
    import basicsr  # noqa: F401  (after the stand-in, which it needs)

    if basicsr.__version__ != BASICSR_VERSION:
        warnings.warn(f'deconv_basicsr.compat targets BasicSR {BASICSR_VERSION}, found {basicsr.__version__}: its '
                      'fixes (CPU resume, EMA buffers) are not applied', RuntimeWarning, stacklevel=2)
        return False
    resume.install()
    ema_buffers.install()
    return True
