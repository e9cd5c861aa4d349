"""replk_mm's own registry scope and its registration into downstream scopes.

`replk_mm.RepLKNet` is reachable from every scope (mmseg, mmdet, mmpretrain, ...) because our
MODELS registry is a child of mmengine's root registry. For convenience the backbone is also
registered as plain `RepLKNet` in mmseg's and mmdet's registries, but *never* in mmpretrain's:
mmpretrain registers its own `RepLKNet` there, and `import mmdet.models` imports mmpretrain's
models, so a second entry would break that import.
"""
import importlib
import importlib.util
import warnings

from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import Registry

MODELS = Registry(
    'model', parent=MMENGINE_MODELS, scope='replk_mm', locations=['replk_mm.models'])
# `replk_mm.<name>` resolves in the root's child of scope replk_mm, from any scope. The layer-decay
# constructor is registered in mmengine's root registry (its plain name works in every scope);
# this child imports it on first use and falls back to the root, so the `replk_mm.` name works.
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optimizer wrapper constructor', parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
    scope='replk_mm', locations=['replk_mm.engine.optimizers'])

# Downstream packages whose MODELS registry gets a plain `RepLKNet` alias.
DOWNSTREAM_SCOPES = ('mmseg', 'mmdet')


def register_downstream(name, module, scopes=DOWNSTREAM_SCOPES):
    """Register `module` as `name` in each installed downstream scope.

    A package that is not installed is skipped (a user with only mmseg does not need mmdet);
    one that is installed but fails to import is reported, not hidden.
    """
    registered = []
    for scope in scopes:
        if importlib.util.find_spec(scope) is None:
            continue
        try:
            registry = importlib.import_module(f'{scope}.registry').MODELS
        except Exception as exc:  # noqa: BLE001 - any import failure must be reported
            warnings.warn(f'replk_mm: {scope} is installed but `{scope}.registry` failed to '
                          f'import ({exc!r}); `type="{name}"` will not work in the {scope} '
                          f'scope, use `type="replk_mm.{name}"` instead.')
            continue
        existing = registry.module_dict.get(name)
        if existing is None:
            registry.register_module(name=name, module=module)
        elif existing is not module and existing.__module__ != module.__module__:
            raise KeyError(f'{scope} already registers a different `{name}` '
                           f'({existing.__module__}); use `type="replk_mm.{name}"`.')
        registered.append(scope)
    return registered
