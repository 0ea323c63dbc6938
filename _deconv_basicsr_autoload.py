"""Load ``deconv_basicsr.plugin`` whenever BasicSR is imported, so BasicSR's own scripts find its archs.

BasicSR has no plugin discovery: ``python basicsr/train.py -opt X.yml`` only knows the archs that BasicSR
ships. Installing this project puts ``deconv_basicsr_autoload.pth`` into site-packages; Python runs its
single line, ``import _deconv_basicsr_autoload``, at start-up, and this module adds a finder to
``sys.meta_path``. Nothing else happens until ``basicsr`` is first imported; then the import is served by
importing ``deconv_basicsr.plugin``, which installs the torchvision stand-in (``deconv_basicsr.compat``),
imports BasicSR, applies the version-gated shims of ``compat`` and registers the archs and the model.

This module is deliberately tiny and imports nothing but ``os`` and ``sys`` (both already loaded at
start-up), so a Python process that never imports BasicSR pays nothing for it.

Set the environment variable ``DECONV_BASICSR_AUTOLOAD=0`` (or ``false``, ``no``, ``off``) to switch it
off; ``import deconv_basicsr.plugin`` still works explicitly.
"""
import os
import sys

#: Environment variable that switches the hook off when set to 0, false, no or off.
ENV_VAR = 'DECONV_BASICSR_AUTOLOAD'

_HOOKED = 'basicsr'
_PLUGIN = 'deconv_basicsr.plugin'


def enabled():
    """Whether the environment allows the hook."""
    return os.environ.get(ENV_VAR, '1').strip().lower() not in ('0', 'false', 'no', 'off')


class _Loader:
    """Wraps BasicSR's real loader for its first import."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        module.__loader__ = module.__spec__.loader = self.loader
        if sys.modules.get(module.__name__) is not module:
            # Loaded by hand (importlib.util.module_from_spec), not imported: leave it alone.
            self.loader.exec_module(module)
            return
        uninstall()  # one shot: from here on, basicsr imports normally (no recursion)
        if _PLUGIN in sys.modules:
            # The plugin is importing basicsr itself, after installing the stand-in.
            self.loader.exec_module(module)
            return
        # Drop the empty module and let the plugin import basicsr normally; the import system then
        # returns whatever sys.modules['basicsr'] holds, as for any module that replaces itself there.
        del sys.modules[module.__name__]
        try:
            __import__(_PLUGIN)
        except Exception as err:
            if _HOOKED not in sys.modules:
                raise  # BasicSR itself failed to load: report that error
            import warnings

            warnings.warn(f'{_PLUGIN} failed to load, BasicSR runs without it ({type(err).__name__}: {err}); '
                          f'set {ENV_VAR}=0 to stop loading it.', RuntimeWarning)


class BasicsrFinder:
    """``sys.meta_path`` finder that hooks the first import of ``basicsr`` and nothing else."""

    _searching = False  # guards against finders that consult sys.meta_path in turn

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if fullname != _HOOKED or cls._searching:
            return None
        # Ask the other finders for BasicSR's real spec (origin, search locations), then wrap its loader.
        cls._searching = True
        try:
            for finder in list(sys.meta_path):
                find_spec = getattr(finder, 'find_spec', None)
                if finder is cls or find_spec is None:
                    continue
                spec = find_spec(fullname, path, target)
                if spec is not None:
                    if spec.loader is not None:
                        spec.loader = _Loader(spec.loader)
                    return spec
            return None
        finally:
            cls._searching = False


def install():
    """Put ``BasicsrFinder`` first on ``sys.meta_path`` (no-op if BasicSR is imported or it is there)."""
    if _HOOKED not in sys.modules and BasicsrFinder not in sys.meta_path:
        sys.meta_path.insert(0, BasicsrFinder)


def uninstall():
    """Remove ``BasicsrFinder`` from ``sys.meta_path``."""
    while BasicsrFinder in sys.meta_path:
        sys.meta_path.remove(BasicsrFinder)


def installed():
    """Whether ``BasicsrFinder`` is on ``sys.meta_path``."""
    return BasicsrFinder in sys.meta_path


if enabled():
    install()
