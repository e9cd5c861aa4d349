"""replk_mm's sub-packages import each other without a cycle, and checkpoint files are read in
one place (replk_mm/fileio.py; everything else goes through replk_mm.models.checkpoint).

Read from the source (ast), with every import counted, the ones inside functions too: a lazy
import hides a cycle from the interpreter, not from the design."""
import ast
import os
import os.path as osp

from conftest import REPO

PACKAGE = 'replk_mm'


def _modules():
    """{dotted module name: (path, is_package)} of every module under replk_mm/."""
    found = {}
    for folder, _, files in os.walk(osp.join(REPO, PACKAGE)):
        for name in files:
            if name.endswith('.py'):
                path = osp.join(folder, name)
                parts = osp.relpath(path, REPO)[:-len('.py')].split(os.sep)
                is_package = parts[-1] == '__init__'
                found['.'.join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


MODULES = _modules()


def _imported(module, is_package, tree):
    """Dotted names of the replk_mm modules ``module`` imports anywhere in ``tree``."""
    base = module.split('.') if is_package else module.split('.')[:-1]
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[:len(base) - node.level + 1]
                target = '.'.join(anchor + ([node.module] if node.module else []))
            else:
                target = node.module or ''
            names.add(target)
            names.update(f'{target}.{alias.name}' for alias in node.names)
    return {n for n in names if n in MODULES}


def _sub_package(module):
    """``replk_mm.models.backbones.x`` -> ``replk_mm.models``; the root package -> None."""
    parts = module.split('.')
    return '.'.join(parts[:2]) if len(parts) > 1 and parts[1] != 'version' else None


def _graph():
    graph = {}
    for module, (path, is_package) in MODULES.items():
        source = _sub_package(module)
        if source is None:
            continue  # replk_mm/__init__.py imports everything on purpose
        with open(path) as f:
            tree = ast.parse(f.read(), path)
        for target in _imported(module, is_package, tree):
            target_package = _sub_package(target)
            if target_package not in (None, source):
                graph.setdefault(source, {}).setdefault(target_package, module)
    return graph


def _find_cycle(graph):
    state, stack = {}, []

    def visit(node):
        state[node] = 'open'
        stack.append(node)
        for nxt in sorted(graph.get(node, {})):
            if state.get(nxt) == 'open':
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        state[node] = 'done'
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_walk_sees_the_known_edges():
    graph = _graph()
    assert 'replk_mm.fileio' in graph['replk_mm.models']  # the loader reads through the leaf
    assert 'replk_mm.models' in graph['replk_mm.engine']  # the Runner loads through the loader
    # the leaf imports nothing of replk_mm but the standard-library-only error markers
    assert set(graph.get('replk_mm.fileio', {})) <= {'replk_mm.errors'}
    assert 'replk_mm.errors' not in graph


def test_no_import_cycle_between_sub_packages():
    graph = _graph()
    cycle = _find_cycle(graph)
    if cycle:
        steps = [f'{a} -> {b} (in {graph[a][b]})' for a, b in zip(cycle, cycle[1:])]
        raise AssertionError('import cycle between sub-packages:\n  ' + '\n  '.join(steps))


def _calls_torch_load(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                node.func.attr == 'load' and isinstance(node.func.value, ast.Name) and \
                node.func.value.id == 'torch':
            yield node.lineno


def test_checkpoint_files_are_read_in_one_place():
    """``torch.load`` appears in replk_mm/fileio.py only, in the library, tools and tests."""
    found = []
    for top in (PACKAGE, 'tools', 'tests'):
        for folder, _, files in os.walk(osp.join(REPO, top)):
            for name in files:
                if name.endswith('.py'):
                    path = osp.join(folder, name)
                    with open(path) as f:
                        tree = ast.parse(f.read(), path)
                    found += [f'{osp.relpath(path, REPO)}:{line}'
                              for line in _calls_torch_load(tree)]
    assert found and all(f.startswith('replk_mm/fileio.py:') for f in found), found
