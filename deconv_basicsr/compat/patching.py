"""The one way this package replaces a BasicSR function or method (idempotent: installed functions are marked).

BasicSR binds many functions by name at import (``basicsr.train`` does ``from basicsr.data import
build_dataloader``, ...), so a replacement is installed where the function is defined *and* in the modules named
as holding it. BasicSR's ``train.py`` run as a script is a further copy, ``__main__``: ``replace_in_main_script``.
"""
import functools
import sys

_MARK = '_deconv_basicsr_replaces'


def is_replaced(func):
    """Whether ``func`` was installed by this module."""
    return hasattr(func, _MARK)


def _install(owner, name, new, original, bound_in):
    setattr(new, _MARK, original)
    setattr(owner, name, new)
    for module in bound_in:
        if original is not None and getattr(module, name, None) is original:
            setattr(module, name, new)


def replace(owner, name, replacement, bound_in=()):
    """Make ``replacement`` (which does not call the original) ``owner.<name>``, a module function or class
    attribute, also in the modules ``bound_in`` that imported the original by name. False if in place already."""
    original = getattr(owner, name, None)
    if original is replacement or (original is not None and is_replaced(original)):
        return False
    _install(owner, name, replacement, original, bound_in)
    return True


def wrap(owner, name, wrapper, bound_in=()):
    """Replace ``owner.<name>`` by ``wrapper(original, *args, **kwargs)``, as ``replace`` does."""
    original = getattr(owner, name)
    if is_replaced(original):
        return False

    @functools.wraps(original)
    def wrapped(*args, **kwargs):
        return wrapper(original, *args, **kwargs)

    _install(owner, name, wrapped, original, bound_in)
    return True


def replace_in_main_script(name, replacement):
    """Replace ``name`` in BasicSR's ``train.py`` or ``test.py`` run as ``__main__`` (its own copy of the file,
    recognised by defining ``name`` and a ``*_pipeline`` function itself). True if replaced by this call."""
    main = sys.modules.get('__main__')
    func = getattr(main, name, None)
    defines_pipeline = any(
        getattr(getattr(main, pipeline, None), '__module__', None) == '__main__'
        for pipeline in ('train_pipeline', 'test_pipeline'))
    if func is None or is_replaced(func) or getattr(func, '__module__', None) != '__main__' or not defines_pipeline:
        return False
    _install(main, name, replacement, func, ())
    return True

