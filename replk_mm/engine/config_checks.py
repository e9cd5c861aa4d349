"""Clear errors for the first config mistakes users make.

* A syntax error names the file that has it (mmengine 0.10.7 parses a temporary copy and says
  ``File "<unknown>"``, also when the error is in a ``_base_`` file).
* ``--cfg-options KEY`` without ``=`` says how to write it (mmengine: "not enough values to
  unpack").
* A ``--cfg-options`` override that cannot take effect is an error: a top-level *variable*
  (``max_iters``, ``crop_size``, ``train_pipeline``...) was read when the config was parsed, so
  changing it afterwards changes nothing. The message lists the keys that took its value.
  A top-level key that neither the config nor the Runner knows (``trian_cfg.max_iters``) gets a
  "did you mean".
* A ``default_hooks`` entry without ``type`` that is not one of the default hook names (a typo
  such as ``default_hooks.checkpiont.interval=5``), and a hook ``type`` no registry knows, say
  which names exist.

What mmengine reads is asked of mmengine, not copied from one version: the Runner's keys are
the arguments of ``Runner.__init__`` plus the ``cfg.get('...')`` keys of its module, the
default hook names those of ``Runner.register_default_hooks`` (both read from mmengine's
source, see :func:`runtime_keys` and :func:`default_hook_names`), and hook types are looked up
in the config scope's registry (``Registry.switch_scope_and_registry``).
"""
import argparse
import ast
import difflib
import functools
import inspect
import os.path as osp

from mmengine.config import DictAction
from mmengine.registry import HOOKS
from mmengine.runner import Runner

from ..errors import UserError

# Top-level keys read after parsing besides mmengine's Runner's (runtime_keys()): by the
# OpenMMLab tools (runner_type: mmseg/mmdet/mmpretrain tools/train.py; gpu_ids: their
# configs) and by replk_mm's tools (tta_*, allow_partial_load).
TOOL_KEYS = frozenset({'runner_type', 'gpu_ids', 'tta_model', 'tta_pipeline',
                       'allow_partial_load'})

# Keys mmengine itself reads while parsing, so overriding them afterwards cannot work.
PARSE_TIME_KEYS = {
    'custom_imports': 'custom_imports is read while the config is parsed; add the module to '
                      "the config file's custom_imports instead",
    '_base_': '_base_ is read while the config is parsed; edit it in the config file'}

MAX_LISTED = 8


class ConfigError(ValueError, UserError):
    """A config or a --cfg-options entry that cannot work as written; says what to write."""


# -- what mmengine reads ------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def runtime_keys():
    """Top-level config keys something reads after parsing: the arguments of mmengine's
    ``Runner.__init__`` (``Runner.from_cfg`` passes them from the config), the keys its module
    reads with ``cfg.get('KEY')`` / ``cfg['KEY']`` (``model_wrapper_cfg``, ``compile``...),
    and :data:`TOOL_KEYS`."""
    params = inspect.signature(Runner.__init__).parameters
    keys = {name for name, p in params.items()
            if name not in ('self', 'cfg') and p.kind is not p.VAR_KEYWORD}
    return frozenset(keys | _cfg_keys_read(inspect.getmodule(Runner)) | TOOL_KEYS)


def _cfg_keys_read(module):
    """The string keys that ``module``'s source reads from a ``cfg`` (a name or an
    attribute): ``cfg.get('KEY'...)`` and ``cfg['KEY']``."""
    def is_cfg(node):
        return (isinstance(node, ast.Name) and node.id == 'cfg') or \
            (isinstance(node, ast.Attribute) and node.attr == 'cfg')

    keys = set()
    for node in ast.walk(ast.parse(inspect.getsource(module))):
        key = None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr == 'get' and is_cfg(node.func.value) and node.args:
            key = node.args[0]
        elif isinstance(node, ast.Subscript) and is_cfg(node.value):
            key = node.slice
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            keys.add(key.value)
    return keys


@functools.lru_cache(maxsize=None)
def default_hook_names():
    """The names of mmengine's default hooks: the keyword names of the ``dict(...)`` that
    ``Runner.register_default_hooks`` assigns to ``default_hooks``."""
    tree = ast.parse(inspect.cleandoc('\n' + inspect.getsource(Runner.register_default_hooks)))
    for node in ast.walk(tree):
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 \
            else getattr(node, 'target', None) if isinstance(node, ast.AnnAssign) else None
        if isinstance(target, ast.Name) and target.id == 'default_hooks' \
                and isinstance(node.value, ast.Call):
            return tuple(k.arg for k in node.value.keywords if k.arg)
    raise RuntimeError('replk_mm.engine.config_checks: mmengine\'s '
                       'Runner.register_default_hooks no longer builds a `default_hooks` dict; '
                       'update default_hook_names() for this mmengine version')


class ConfigSyntaxError(SyntaxError, UserError):
    """A syntax error in a config file; the message names the file and the line."""


# -- --cfg-options ----------------------------------------------------------------------------

class CfgOptionsAction(DictAction):
    """mmengine's ``DictAction`` that first checks every item is ``KEY=VALUE``."""

    def __call__(self, parser, namespace, values, option_string=None):
        for item in values:
            key = item.partition('=')[0]
            if '=' not in item or not key.strip():
                raise argparse.ArgumentError(
                    self, f'{item!r} is not KEY=VALUE: write e.g. train_cfg.max_iters=100 '
                    '(lists: KEY=[a,b]; strings with spaces in quotes)')
        super().__call__(parser, namespace, values, option_string)


def check_cfg_options(cfg_before, cfg_options, source='--cfg-options'):
    """Raise ConfigError for overrides of ``cfg_before`` (the parsed config) that cannot take
    effect or name an unknown top-level key."""
    for key in cfg_options or {}:
        top = key.split('.')[0]
        if top in runtime_keys():
            continue
        if top in PARSE_TIME_KEYS:
            raise ConfigError(f'{source} {key}: {PARSE_TIME_KEYS[top]}')
        if top not in cfg_before:
            close = difflib.get_close_matches(top, sorted(set(cfg_before) | runtime_keys()),
                                              n=1)
            raise ConfigError(
                f'{source} {key}: the config has no top-level key {top!r}'
                + (f'; did you mean {close[0]!r}?' if close else
                   ' and mmengine does not read one.'))
        rest = key[len(top):]
        holding = paths_holding(cfg_before, cfg_before[top])
        related = [p for p in holding if _related(p.split('.')[-1], top)]
        others = [p for p in holding if p not in related]
        value = cfg_options[key]
        if related:
            where = f' Set instead: {_options([p + rest for p in related], value)}'
            if others:
                where += (f'; other keys holding the same value ({_shorten(others)}) may '
                          'derive from it too')
        elif others:
            where = (f' Keys holding its value, check which derive from it: '
                     f'{_options([p + rest for p in others], value)}')
        else:
            where = ' Set the keys derived from it directly'
        raise ConfigError(
            f'{source} {key}: {top!r} is a config variable, already used when the config was '
            f'parsed; overriding it changes nothing.{where}.')


def _related(leaf, name):
    return leaf in name or name in leaf


def _shorten(items):
    shown = ', '.join(items[:MAX_LISTED])
    return shown + (f' ... and {len(items) - MAX_LISTED} more' if len(items) > MAX_LISTED
                    else '')


def _options(targets, value):
    shown = ' '.join(f'{t}={_text(value)}' for t in targets[:MAX_LISTED])
    more = f' ... and {len(targets) - MAX_LISTED} more' if len(targets) > MAX_LISTED else ''
    return f'--cfg-options {shown}{more}'


def _text(value):
    if isinstance(value, (list, tuple)):
        return '[' + ','.join(map(str, value)) + ']'
    return str(value)


def paths_holding(cfg, value):
    """Dotted paths under the runtime keys of ``cfg`` whose value equals ``value``."""
    found = []

    def walk(node, path):
        if path and _same(node, value):
            found.append(path)
            return
        if isinstance(node, dict):
            for key, child in node.items():
                walk(child, f'{path}.{key}' if path else str(key))
        elif isinstance(node, (list, tuple)):
            for index, child in enumerate(node):
                walk(child, f'{path}.{index}')

    for key in sorted(runtime_keys() & set(cfg)):
        walk(cfg[key], key)
    return found


def _same(a, b):
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(b, (int, float)) and isinstance(a, (int, float)):
        return a == b
    if type(a) is not type(b) and not (isinstance(a, (list, tuple))
                                       and isinstance(b, (list, tuple))):
        return False
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - e.g. arrays: not a match
        return False


# -- hooks --------------------------------------------------------------------------------------

def check_hooks(cfg):
    """Raise ConfigError for a default hook name typo or a hook type no registry knows."""
    default_hooks = cfg.get('default_hooks') or {}
    # a name is a default hook's when mmengine has it or the config gives it a type (the
    # visualization hook of mmseg's / mmdet's default runtime)
    names = list(default_hook_names()) + [
        n for n, h in default_hooks.items()
        if n not in default_hook_names() and isinstance(h, dict) and 'type' in h]
    # the Runner builds hooks in the config's scope, 'mmengine' when it names none
    scope = cfg.get('default_scope') or 'mmengine'
    with HOOKS.switch_scope_and_registry(scope) as hooks_registry:
        for name, hook in default_hooks.items():
            if hook is None:
                continue
            if isinstance(hook, dict) and 'type' not in hook and name not in names:
                close = difflib.get_close_matches(name, names, n=1)
                raise ConfigError(
                    f'default_hooks.{name} has no type and {name!r} is not a default hook name '
                    f'({", ".join(names)})'
                    + (f': did you mean default_hooks.{close[0]}?' if close else
                       f': give it a type, e.g. default_hooks.{name}=dict(type=...)'))
            _check_hook_type(hooks_registry, hook, f'default_hooks.{name}')
        for index, hook in enumerate(cfg.get('custom_hooks') or []):
            if isinstance(hook, dict) and 'type' not in hook:
                raise ConfigError(f"custom_hooks[{index}] has no 'type': write "
                                  "dict(type='HookName', ...)")
            _check_hook_type(hooks_registry, hook, f'custom_hooks[{index}]')


def _check_hook_type(registry, hook, where):
    if not isinstance(hook, dict) or not isinstance(hook.get('type'), str):
        return
    name = hook['type']
    if registry.get(name) is not None:
        return
    known = set()
    node = registry
    while node is not None:
        known |= set(node.module_dict)
        node = node.parent
    close = difflib.get_close_matches(name.split('.')[-1], sorted(known), n=1)
    raise ConfigError(
        f'{where}: hook type {name!r} is not registered in the {registry.scope!r} scope'
        + (f'; did you mean {close[0]!r}?' if close else '')
        + ' (a hook from another package needs it in custom_imports)')


# -- syntax errors ------------------------------------------------------------------------------

def locate_syntax_error(config):
    """The SyntaxError of ``config`` or of one of its local ``_base_`` files (depth first), with
    the real file name and line; None if they all parse."""
    return _find_syntax_error(osp.abspath(osp.expanduser(config)), set())


def _find_syntax_error(path, seen):
    if path in seen or not path.endswith('.py') or not osp.isfile(path):
        return None
    seen.add(path)
    with open(path, encoding='utf-8') as f:
        source = f.read()
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as exc:
        return exc
    for base in _base_files(tree):
        if '::' in base:  # an installed package's config: not the user's mistake
            continue
        found = _find_syntax_error(osp.normpath(osp.join(osp.dirname(path), base)), seen)
        if found is not None:
            return found
    return None


def _base_files(tree):
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == '_base_' for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                return []
            return [value] if isinstance(value, str) else [v for v in value
                                                           if isinstance(v, str)]
    return []


def syntax_error_message(exc):
    line = (exc.text or '').rstrip('\n')
    pointer = ''
    if line and exc.offset:
        pointer = '\n    ' + ' ' * (exc.offset - 1 - (len(line) - len(line.lstrip()))) + '^'
    shown = f'\n    {line.strip()}{pointer}' if line.strip() else ''
    return f'syntax error in config file {exc.filename}, line {exc.lineno}: {exc.msg}{shown}'
