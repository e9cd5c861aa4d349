"""Arch tables in one shape for every backbone (plain Python, torch only by package).

The shape is mmpretrain's: a backbone class names its archs in a class attribute
``arch_settings`` (``{name: dict}``; a subclass or a user may override it) and takes ``arch`` as
one of those names or as a dict with the same keys. :func:`resolve_arch` turns either into a
complete, new dict; each backbone then checks the values.
"""
import copy
import difflib
from collections.abc import Mapping

__all__ = ['resolve_arch']


def _close(name, candidates):
    close = difflib.get_close_matches(str(name), list(candidates), n=1)
    return f' (did you mean {close[0]!r}?)' if close else ''


def resolve_arch(arch, arch_settings, keys, defaults=None, owner='backbone'):
    """The complete arch dict of ``arch`` (a new dict, values deep-copied).

    Args:
        arch (str | dict): A name in ``arch_settings``, or a dict with every key of ``keys``
            and optionally those of ``defaults``.
        arch_settings (dict): ``{name: arch dict}``, the backbone's named archs.
        keys (Sequence[str]): The keys every arch dict has.
        defaults (dict, optional): Optional keys and the values they take when absent.
        owner (str): The backbone's name, for the messages.

    Raises:
        ValueError: An unknown arch name, or an arch dict with missing or unknown keys; the
            message names the valid names and keys.
        TypeError: ``arch`` is neither a str nor a dict.
    """
    defaults = dict(defaults or {})
    optional = f' and optionally {sorted(defaults)}' if defaults else ''
    if isinstance(arch, str):
        if arch not in arch_settings:
            raise ValueError(
                f'unknown {owner} arch {arch!r}{_close(arch, arch_settings)}; the named archs '
                f'are {sorted(arch_settings)} ({owner}.arch_settings), or pass a dict with '
                f'keys {list(keys)}{optional}')
        where = f'{owner}.arch_settings[{arch!r}]'
        arch = arch_settings[arch]
    else:
        where = 'the arch dict'
    if not isinstance(arch, Mapping):
        raise TypeError(f'{owner} arch must be a name in {sorted(arch_settings)} or a dict with '
                        f'keys {list(keys)}{optional}; got {type(arch).__name__} {arch!r}')
    missing = [k for k in keys if k not in arch]
    unknown = [k for k in arch if k not in keys and k not in defaults]
    if missing or unknown:
        problems = []
        if missing:
            problems.append(f'missing keys {missing}')
        if unknown:
            valid = list(keys) + sorted(defaults)
            problems.append('unknown keys '
                            + ', '.join(f'{k!r}{_close(k, valid)}' for k in unknown))
        raise ValueError(f'{owner}: {where}: {"; ".join(problems)}. An arch dict has keys '
                         f'{list(keys)}{optional}')
    return {**copy.deepcopy(defaults), **copy.deepcopy(dict(arch))}
