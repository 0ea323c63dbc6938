"""The one way this package replaces a BasicSR function or method.

BasicSR binds many functions by name when its modules are imported (``basicsr.train`` does
``from basicsr.data import build_dataloader``, ``from basicsr.utils.options import parse_options``, ...), so
replacing a function where it is defined does not reach the modules that already hold the original. A
replacement is therefore installed where the function is defined *and* in the modules named as holding it.
BasicSR's ``train.py`` run as a script is a further copy, ``__main__``, whose own functions exist only once
the script body has run: ``replace_in_main_script`` handles that, at the start of the pipeline.

Every installed function is marked, so installing twice is a no-op (``deconv_basicsr.compat.apply`` is
idempotent).
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
    """Make ``replacement`` BasicSR's ``owner.<name>`` (a module function or a class attribute).

    Args:
        owner (module | type): Where the original is defined.
        name (str): Its name.
        replacement (callable): The new function; it does not call the original.
        bound_in (Iterable[module]): Modules that imported the original by name; they get the replacement.

    Returns:
        bool: False when it was in place already.
    """
    original = getattr(owner, name, None)
    if original is replacement or (original is not None and is_replaced(original)):
        return False
    _install(owner, name, replacement, original, bound_in)
    return True


def wrap(owner, name, wrapper, bound_in=()):
    """Replace ``owner.<name>`` by ``wrapper(original, *args, **kwargs)``, keeping the original's name and doc.

    Returns:
        bool: False when it was in place already.
    """
    original = getattr(owner, name)
    if is_replaced(original):
        return False

    @functools.wraps(original)
    def wrapped(*args, **kwargs):
        return wrapper(original, *args, **kwargs)

    _install(owner, name, wrapped, original, bound_in)
    return True


def replace_in_main_script(name, replacement):
    """Replace ``name`` in BasicSR's ``train.py`` or ``test.py`` when that file runs as ``__main__``.

    ``python basicsr/train.py`` executes its own copy of the file, whose functions (``load_resume_state``) are
    not ``basicsr.train``'s. The script is recognised by defining ``name`` and a ``*_pipeline`` function itself.

    Returns:
        bool: True if ``__main__.<name>`` was replaced by this call.
    """
    main = sys.modules.get('__main__')
    func = getattr(main, name, None)
    defines_pipeline = any(
        getattr(getattr(main, pipeline, None), '__module__', None) == '__main__'
        for pipeline in ('train_pipeline', 'test_pipeline'))
    if func is None or is_replaced(func) or getattr(func, '__module__', None) != '__main__' or not defines_pipeline:
        return False
    _install(main, name, replacement, func, ())
    return True

