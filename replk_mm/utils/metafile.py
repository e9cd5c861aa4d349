"""Read OpenMMLab model-index files: a ``model-index.yml`` that imports metafiles, each with
``Collections`` and ``Models`` (the format of mmpretrain / mmseg / mmdet and of the
paperswithcode ``model-index`` package).

The metafiles are the one place where paper results, parameter and FLOPs counts as published,
released checkpoint names and download links are written; tests, docs and tools read them
through :func:`load_model_index`. Needs PyYAML only (no OpenMMLab import).

Fields read here, per model (anything else is kept in :attr:`ModelEntry.extra`):

* ``Name`` (unique over the whole index), ``In Collection``, ``Config`` (path relative to the
  directory of ``model-index.yml``);
* ``Metadata`` (a mapping; the collection's metadata is merged underneath it);
* ``Results``: a list of ``{Task, Dataset, Metrics: {name: value}}``;
* ``Weights``: the URL of the released checkpoint, ``Weights File``: its file name.
"""
import os.path as osp
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping, Optional, Tuple

import yaml

from ..errors import UserError


class MetafileError(ValueError, UserError):
    """A model index or metafile that does not follow the format; the message names the file
    and the entry."""


@dataclass(frozen=True)
class Result:
    task: str
    dataset: str
    metrics: Mapping[str, Any]


@dataclass(frozen=True)
class ModelEntry:
    """One ``Models`` entry of a metafile, with its collection's metadata merged in."""
    name: str
    collection: str
    config: str  # as written in the metafile: relative to the model index's directory
    metadata: Mapping[str, Any]
    results: Tuple[Result, ...]
    weights: Optional[str]
    weights_file: Optional[str]
    metafile: str  # path of the metafile that defines it
    extra: Mapping[str, Any] = field(default_factory=dict)

    def metric(self, name, task=None):
        """The value of metric ``name`` (in the result of ``task`` if given)."""
        found = [r.metrics[name] for r in self.results
                 if name in r.metrics and (task is None or r.task == task)]
        if len(found) != 1:
            known = sorted({(r.task, m) for r in self.results for m in r.metrics})
            what = 'no' if not found else 'more than one'
            raise KeyError(f'{self.name} ({self.metafile}) has {what} metric {name!r}'
                           f'{"" if task is None else f" for task {task!r}"}; '
                           f'its metrics: {known}')
        return found[0]

    def has_metric(self, name, task=None):
        return any(name in r.metrics and (task is None or r.task == task) for r in self.results)


@dataclass(frozen=True)
class ModelIndex:
    """All models of a model index, in file order."""
    path: str
    metafiles: Tuple[str, ...]
    models: Tuple[ModelEntry, ...]

    @property
    def root(self):
        return osp.dirname(osp.abspath(self.path))

    def __iter__(self):
        return iter(self.models)

    def __len__(self):
        return len(self.models)

    def __getitem__(self, name):
        for model in self.models:
            if model.name == name:
                return model
        raise KeyError(f'no model named {name!r} in {self.path} '
                       f'(known: {", ".join(m.name for m in self.models)})')

    def config_path(self, entry):
        """Absolute path of an entry's config."""
        return osp.normpath(osp.join(self.root, entry.config))

    def find_config(self, config):
        """The entry whose config is the file ``config`` (any path to it), or None."""
        target = osp.realpath(config)
        for model in self.models:
            if osp.realpath(self.config_path(model)) == target:
                return model
        return None


def parse_hw(value):
    """Parse an ``HxW`` metadata entry (e.g. ``FLOPs Input (HxW): 512x2048``) -> (512, 2048)."""
    try:
        h, w = (int(v) for v in str(value).lower().split('x'))
    except ValueError:
        raise MetafileError(f'expected an HxW size like 512x2048, got {value!r}') from None
    return (h, w)


def _load_yaml(path, what):
    if not osp.isfile(path):
        raise FileNotFoundError(f'{what} {path} does not exist')
    with open(path, encoding='utf-8') as f:
        try:
            data = yaml.safe_load(f)
        except yaml.YAMLError as exc:
            raise MetafileError(f'{path} is not valid YAML: {exc}') from exc
    if not isinstance(data, dict):
        raise MetafileError(f'{path} must hold a mapping at the top level, got '
                            f'{type(data).__name__}')
    return data


def _need(mapping, key, where, kind=str):
    if key not in mapping:
        raise MetafileError(f'{where} has no {key!r}')
    value = mapping[key]
    if not isinstance(value, kind):
        raise MetafileError(f'{where}: {key!r} must be a {kind.__name__}, got {value!r}')
    return value


def _results(raw, where):
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise MetafileError(f'{where}: Results must be a list of {{Task, Dataset, Metrics}}')
    results = []
    for i, item in enumerate(raw):
        at = f'{where}, result {i}'
        if not isinstance(item, dict):
            raise MetafileError(f'{at} must be a mapping, got {item!r}')
        metrics = _need(item, 'Metrics', at, dict)
        results.append(Result(task=_need(item, 'Task', at), dataset=_need(item, 'Dataset', at),
                              metrics=MappingProxyType(dict(metrics))))
    return tuple(results)


_KNOWN = {'Name', 'In Collection', 'Config', 'Metadata', 'Results', 'Weights', 'Weights File'}


def load_metafile(path):
    """The models of one metafile (collections merged in), in file order."""
    data = _load_yaml(path, 'metafile')
    collections = {}
    for i, col in enumerate(data.get('Collections') or []):
        name = _need(col, 'Name', f'{path}: collection {i}')
        collections[name] = col
    models = []
    for i, raw in enumerate(_need(data, 'Models', path, list)):
        if not isinstance(raw, dict):
            raise MetafileError(f'{path}: model {i} must be a mapping, got {raw!r}')
        name = _need(raw, 'Name', f'{path}: model {i}')
        where = f'{path}: model {name!r}'
        collection = _need(raw, 'In Collection', where)
        if collection not in collections:
            raise MetafileError(f'{where} is "In Collection: {collection}", which {path} does '
                                f'not define (collections: {sorted(collections)})')
        metadata = dict(collections[collection].get('Metadata') or {})
        metadata.update(raw.get('Metadata') or {})
        weights = raw.get('Weights')
        if weights is not None and not isinstance(weights, str):
            raise MetafileError(f'{where}: Weights must be the checkpoint URL (a string), '
                                f'got {weights!r}')
        models.append(ModelEntry(
            name=name, collection=collection, config=_need(raw, 'Config', where),
            metadata=MappingProxyType(metadata), results=_results(raw.get('Results'), where),
            weights=weights, weights_file=raw.get('Weights File'), metafile=path,
            extra=MappingProxyType({k: v for k, v in raw.items() if k not in _KNOWN})))
    return models


def load_model_index(path):
    """Read ``model-index.yml`` (``Import: [metafile, ...]``) and every metafile it lists.

    Raises :class:`MetafileError` for a malformed file or a model name used twice, and
    ``FileNotFoundError`` for a listed metafile that does not exist.
    """
    data = _load_yaml(path, 'model index')
    root = osp.dirname(osp.abspath(path))
    imports = _need(data, 'Import', path, list)
    metafiles, models, seen = [], [], {}
    for rel in imports:
        metafile = osp.join(root, rel)
        if not osp.isfile(metafile):
            raise FileNotFoundError(f'{path} imports {rel}, which does not exist')
        metafiles.append(metafile)
        for model in load_metafile(metafile):
            if model.name in seen:
                raise MetafileError(f'model name {model.name!r} is used twice: in '
                                    f'{seen[model.name]} and {metafile}')
            seen[model.name] = metafile
            models.append(model)
    return ModelIndex(path=path, metafiles=tuple(metafiles), models=tuple(models))
