"""Fixes that BasicSR 1.4.2 needs to run at all with torch >= 2.6 and torchvision >= 0.17: small shims.

One module per defect, each naming it and the BasicSR function it replaces:

* ``torchvision_stand_in``: ``import basicsr`` fails with torchvision >= 0.17;
* ``resume``: resuming crashes without a GPU, and ``--auto_resume`` looks in the wrong folder
  (``load_resume_state``);
* ``ema_buffers``: the EMA network keeps its initial buffers (``BaseModel.model_ema``).

Each targets BasicSR ``BASICSR_VERSION``, the latest release on PyPI (no later release exists to check
them against). On any other version ``apply()`` installs the stand-in only where the torchvision module is
missing and warns that the other fixes are not applied. A run that neither resumes nor keeps an EMA of a
network with buffers trains exactly as with BasicSR alone. Everything else this project adds to a run
(exact resume, Ctrl-C, start-up checks, ...) is in ``deconv_basicsr.training``, not here.

``patching`` is the one helper that installs replacements, also where BasicSR imported the originals by
name. ``apply()`` is idempotent; the stand-in must exist when BasicSR is first imported, so the modules
import BasicSR inside their functions only.
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
