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
"""
import argparse
import ast
import difflib
import importlib
import os.path as osp

from mmengine.config import DictAction

from ..errors import UserError

# Top-level keys something reads after parsing: mmengine 0.10.7's Runner (from_cfg and the
# cfg.get calls in runner.py), and replk_mm's tools (tta_*, allow_partial_load).
RUNTIME_KEYS = frozenset({
    'model', 'work_dir', 'train_dataloader', 'val_dataloader', 'test_dataloader', 'train_cfg',
    'val_cfg', 'test_cfg', 'auto_scale_lr', 'optim_wrapper', 'param_scheduler',
    'val_evaluator', 'test_evaluator', 'default_hooks', 'custom_hooks', 'data_preprocessor',
    'load_from', 'resume', 'launcher', 'env_cfg', 'log_processor', 'log_level', 'visualizer',
    'default_scope', 'randomness', 'experiment_name', 'model_wrapper_cfg', 'sync_bn',
    'find_unused_parameters', 'activation_checkpointing', 'efficient_conv_bn_eval', 'compile',
    'runner_type', 'gpu_ids', 'tta_model', 'tta_pipeline', 'allow_partial_load'})

# Keys mmengine itself reads while parsing, so overriding them afterwards cannot work.
PARSE_TIME_KEYS = {
    'custom_imports': 'custom_imports is read while the config is parsed; add the module to '
                      "the config file's custom_imports instead",
    '_base_': '_base_ is read while the config is parsed; edit it in the config file'}

# mmengine's default hooks, and mmseg's / mmdet's visualization hook.
DEFAULT_HOOK_NAMES = ('runtime_info', 'timer', 'sampler_seed', 'logger', 'param_scheduler',
                      'checkpoint', 'visualization')
MAX_LISTED = 8


class ConfigError(ValueError, UserError):
    """A config or a --cfg-options entry that cannot work as written; says what to write."""


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
        if top in RUNTIME_KEYS:
            continue
        if top in PARSE_TIME_KEYS:
            raise ConfigError(f'{source} {key}: {PARSE_TIME_KEYS[top]}')
        if top not in cfg_before:
            close = difflib.get_close_matches(top, sorted(set(cfg_before) | RUNTIME_KEYS), n=1)
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

    for key in sorted(RUNTIME_KEYS & set(cfg)):
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
    hooks_registry = _hooks_registry(cfg.get('default_scope'))
    for name, hook in (cfg.get('default_hooks') or {}).items():
        if hook is None:
            continue
        if isinstance(hook, dict) and 'type' not in hook:
            close = difflib.get_close_matches(name, DEFAULT_HOOK_NAMES, n=1)
            raise ConfigError(
                f'default_hooks.{name} has no type and {name!r} is not a default hook name '
                f'({", ".join(DEFAULT_HOOK_NAMES)})'
                + (f': did you mean default_hooks.{close[0]}?' if close else
                   f': give it a type, e.g. default_hooks.{name}=dict(type=...)'))
        _check_hook_type(hooks_registry, hook, f'default_hooks.{name}')
    for index, hook in enumerate(cfg.get('custom_hooks') or []):
        if isinstance(hook, dict) and 'type' not in hook:
            raise ConfigError(f"custom_hooks[{index}] has no 'type': write "
                              "dict(type='HookName', ...)")
        _check_hook_type(hooks_registry, hook, f'custom_hooks[{index}]')


def _hooks_registry(scope):
    from mmengine.registry import HOOKS
    if scope and scope != 'mmengine':
        try:
            return importlib.import_module(f'{scope}.registry').HOOKS
        except (ImportError, AttributeError):
            return HOOKS
    return HOOKS


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
