"""Model options: a bad network or model option is named by its key, before anything is built.

BasicSR 1.4.2's ``build_model`` builds the model, which builds its networks from ``network_g`` (``network_d``,
...) with every key passed to the arch's constructor: an unknown key is a ``TypeError`` about an unexpected
keyword argument, a bad value whatever the arch raises, and neither names the option. ``check_model_options``
validates the options against what they are passed to, and names the key:

* ``model_type`` and each ``network_*.type`` must be registered;
* each key of a network spec must be a parameter of the arch's signature (``inspect.signature``, which the
  deconv archs complete with FastDeconv's settings; archs that take ``**kwargs`` are not checked for
  unknown keys), and its required parameters must be given; ``DeconvNet``'s ``arch`` spec is checked
  against the wrapped arch in turn;
* values: the network is built on the meta device (nothing is allocated) and a ``ValueError`` (or
  ``TypeError``) of its constructor is reported with its own message, naming the key whose default lets the
  network build;
* a model class may check its own options (``check_options(opt)``, as ``DeconvSRModel`` does).

It runs at start-up, in ``checks.check_startup``.
"""
import contextlib
import difflib
import inspect
import logging
import warnings

#: The arch whose ``arch`` option is itself a network spec.
WRAPPING_ARCH = 'DeconvNet'


class OptionValueError(ValueError):
    """An option file value that a network or model rejects, named by its key."""


def _closest(name, names):
    close = difflib.get_close_matches(str(name), list(names), n=1)
    return f'; did you mean {close[0]}?' if close else ''


def _where(source):
    return f' in {source}' if source else ' in the option file'


def _parameters(arch):
    """The arch's named parameters (None when it takes ``**kwargs``: they cannot be checked)."""
    params = inspect.signature(arch).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return {p.name: p for p in params if p.kind is not inspect.Parameter.VAR_POSITIONAL}


def _unknown_key_message(net_key, key, owner, known):
    from deconv_basicsr.layers.settings import unknown_option_message

    message = unknown_option_message(key, owner, known)
    return message if net_key == 'network_g' else message.replace('network_g.', f'{net_key}.', 1)


def _spec_problems(net_key, spec, prefix=''):
    """Problems of a network spec's type and keys, found without building it: ``(key, message)`` pairs."""
    from basicsr.utils.registry import ARCH_REGISTRY

    type_key = f'{net_key}.{prefix}type'
    arch_name = spec.get('type')
    if arch_name is None:
        return [(type_key, f'{type_key}: missing (the arch to build)')]
    if arch_name not in ARCH_REGISTRY:
        return [(type_key, f'{type_key}: {arch_name!r} is not a registered arch'
                 f'{_closest(arch_name, ARCH_REGISTRY.keys())}')]
    params = _parameters(ARCH_REGISTRY.get(arch_name))
    if params is None:
        return []
    problems = [(f'{net_key}.{prefix}{key}',
                 _unknown_key_message(net_key, f'{prefix}{key}', arch_name, [f'{prefix}{name}' for name in params]))
                for key in spec if key != 'type' and key not in params]
    problems += [(f'{net_key}.{prefix}{name}', f'{net_key}.{prefix}{name}: required by {arch_name}, missing')
                 for name, p in params.items() if p.default is inspect.Parameter.empty and name not in spec]
    if arch_name == WRAPPING_ARCH and isinstance(spec.get('arch'), dict):
        problems += _spec_problems(net_key, spec['arch'], prefix=f'{prefix}arch.')
    return problems


@contextlib.contextmanager
def _quiet():
    """Neither warnings nor log records while building to check.

    BasicSR's ``build_network`` logs through ``get_root_logger``, whose first call fixes the run's logger:
    made before the pipeline names the log file, it would leave the run without one (and without INFO).
    """
    import basicsr.archs

    get_root_logger = basicsr.archs.get_root_logger
    basicsr.archs.get_root_logger = lambda *args, **kwargs: logging.getLogger(__name__)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            yield
    finally:
        basicsr.archs.get_root_logger = get_root_logger


def _build_error(spec):
    """The ``ValueError`` / ``TypeError`` building ``spec`` raises, or None when it builds.

    Built on the meta device; an error there is confirmed on the CPU (an arch may do what meta tensors
    cannot, such as reading a value).
    """
    import torch
    from basicsr.archs import build_network

    try:
        with torch.device('meta'), _quiet():
            build_network(dict(spec))
        return None
    except (ValueError, TypeError, RuntimeError):
        pass
    try:
        with _quiet():
            build_network(dict(spec))
        return None
    except (ValueError, TypeError) as error:
        return error


def _culprit(spec):
    """The first key of ``spec`` whose default value lets it build, as ``key`` or ``arch.key``; or None."""
    from basicsr.utils.registry import ARCH_REGISTRY

    params = _parameters(ARCH_REGISTRY.get(spec['type'])) or {}
    for key in spec:
        default = params[key].default if key in params else inspect.Parameter.empty
        if default is not inspect.Parameter.empty and _build_error({**spec, key: default}) is None:
            return key
    if spec['type'] == WRAPPING_ARCH and isinstance(spec.get('arch'), dict):
        inner = _culprit(spec['arch'])
        if inner is not None:
            return f'arch.{inner}'
    return None


def check_network_options(opt, source=None):
    """Check every ``network_*`` spec of ``opt``; raise ``OptionValueError`` naming the first bad key.

    Args:
        opt (dict): Options.
        source (str, optional): The option file, named in the message.
    """
    for net_key in [k for k in opt if k.startswith('network_') and isinstance(opt[k], dict)]:
        spec = opt[net_key]
        problems = _spec_problems(net_key, spec)
        if problems:
            (key, first), others = problems[0], [message for _, message in problems[1:]]
            raise OptionValueError(f'{first} (fix {key}{_where(source)})' + ''.join(f'\n{m}' for m in others))
        error = _build_error(spec)
        if error is not None:
            culprit = _culprit(spec)
            key = f'{net_key}.{culprit}' if culprit else net_key
            raise OptionValueError(f"{key} ({spec['type']}): {error} (fix {key}{_where(source)})")


def check_model_options(opt, source=None):
    """Check ``model_type``, the network specs and the model's own options (``check_options``)."""
    from basicsr.utils.registry import MODEL_REGISTRY

    model_type = opt.get('model_type')
    if model_type not in MODEL_REGISTRY:
        raise OptionValueError(f'model_type: {model_type!r} is not a registered model'
                               f'{_closest(model_type, MODEL_REGISTRY.keys())} (fix model_type{_where(source)})')
    check_network_options(opt, source)
    check_options = getattr(MODEL_REGISTRY.get(model_type), 'check_options', None)
    if check_options is not None:
        try:
            check_options(opt)
        except ValueError as error:
            raise OptionValueError(f'{error} (fix it{_where(source)})') from None
