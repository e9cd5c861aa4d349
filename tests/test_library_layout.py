"""The library (replk_mm/) knows nothing of the repository checkout: it computes no repository
root and builds, opens or runs no path under tools/ or configs/ (those live in tools/, which
knows the checkout). Messages may still name a command for the user to run."""
import ast
import os
import os.path as osp
import re

import pytest

PACKAGE = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'replk_mm')
CHECKOUT_PATH = re.compile(r'(\.{1,2}/)*(tools|configs)(/[^\s]*)?')
# Calls that open, load or run a path, and calls that build one from parts.
PATH_CALLS = {'open', 'fromfile', 'run', 'Popen', 'call', 'check_call', 'check_output', 'exists',
              'isfile', 'isdir', 'listdir', 'glob', 'abspath', 'realpath', 'import_module',
              'spec_from_file_location', 'load_checkpoint', 'read_checkpoint'}
JOIN_CALLS = {'join', 'Path', 'PurePath'}


def _sources():
    for folder, _, files in os.walk(PACKAGE):
        for name in sorted(files):
            if name.endswith('.py'):
                path = osp.join(folder, name)
                with open(path) as f:
                    yield osp.relpath(path, osp.dirname(PACKAGE)), ast.parse(f.read(), path)


SOURCES = list(_sources())


def _is_checkout_path(node):
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and \
        CHECKOUT_PATH.fullmatch(node.value) is not None


def _literals(node):
    """``node`` itself, or the items of a literal list / tuple (an argv, a list of paths)."""
    return list(node.elts) if isinstance(node, (ast.List, ast.Tuple)) else [node]


def _checkout_arguments(node):
    """Checkout paths a call or ``a / b`` expression builds, opens, loads or runs."""
    if isinstance(node, ast.BinOp):  # pathlib: root / 'configs'
        return [node.right.value] if isinstance(node.op, ast.Div) and \
            _is_checkout_path(node.right) else []
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, 'id', None)
    args = node.args + [k.value for k in node.keywords]
    if name in JOIN_CALLS:
        # join(root, 'tools', ...) starts a checkout path; join(pkg_dir, '.mim', 'configs')
        # is inside an installed package, not the checkout
        found = []
        for arg in args:
            if _is_checkout_path(arg):
                found.append(arg.value)
            if isinstance(arg, ast.Constant):
                break
        return found
    if name in PATH_CALLS:
        return [a.value for arg in args for a in _literals(arg) if _is_checkout_path(a)]
    return []


def test_the_scan_sees_the_whole_package():
    names = {name for name, _ in SOURCES}
    assert len(names) > 20
    assert 'replk_mm/apis/inference.py' in names
    assert 'replk_mm/datasets/synthetic/scene.py' in names


@pytest.mark.parametrize('name,tree', SOURCES, ids=[name for name, _ in SOURCES])
def test_module_does_not_locate_the_checkout(name, tree):
    problems = []
    for node in ast.walk(tree):
        line = getattr(node, 'lineno', '?')
        # A repository root is found from a module's own location (or by editing sys.path).
        if isinstance(node, ast.Name) and node.id == '__file__':
            problems.append(f'{name}:{line}: uses __file__')
        if isinstance(node, ast.Attribute) and node.attr == 'path' and \
                getattr(node.value, 'id', None) == 'sys':
            problems.append(f'{name}:{line}: uses sys.path')
        # Checkout paths built, opened, loaded or run ...
        if isinstance(node, (ast.Call, ast.BinOp)):
            for text in _checkout_arguments(node):
                problems.append(f'{name}:{line}: uses the checkout path {text!r}')
        # ... or kept as a module constant / default for later use.
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            for value in _literals(node.value):
                if _is_checkout_path(value):
                    problems.append(f'{name}:{line}: assigns the checkout path {value.value!r}')
        if isinstance(node, ast.arguments):
            for default in node.defaults + [d for d in node.kw_defaults if d is not None]:
                if _is_checkout_path(default):
                    problems.append(f'{name}:{line}: defaults to the checkout path '
                                    f'{default.value!r}')
    assert not problems, '\n'.join(problems)


@pytest.mark.parametrize('snippet', [
    "import os.path as osp\nREPO = osp.dirname(osp.dirname(__file__))\n",
    "import os.path as osp\ndef f(repo):\n    return osp.join(repo, 'tools', 'train.py')\n",
    "CONFIG = 'configs/demo/x.py'\n",
    "def f(config='configs/demo/x.py'):\n    pass\n",
    "import subprocess\nsubprocess.run(['python', 'tools/train.py'])\n",
    "from pathlib import Path\np = Path('x') / 'configs'\n",
    "import os\np = os.path.join(os.getcwd(), 'configs', 'demo')\n",
])
def test_the_check_catches_checkout_paths(snippet):
    with pytest.raises(AssertionError):
        test_module_does_not_locate_the_checkout('snippet.py', ast.parse(snippet))


@pytest.mark.parametrize('snippet', [
    # a command named for the user in a message
    "def f(path):\n    raise ValueError(f'{path} is missing: run "
    "tools/dataset_converters/make_demo_data.py coco DIR')\n",
    "def f(d):\n    return d.missing('tools/dataset_converters/make_demo_data.py')\n",
    # configs shipped inside an installed OpenMMLab package
    "import os.path as osp\ndef f(pkg_dir, rel):\n"
    "    return osp.join(pkg_dir, '.mim', 'configs', rel)\n",
])
def test_the_check_allows_messages_and_installed_packages(snippet):
    test_module_does_not_locate_the_checkout('snippet.py', ast.parse(snippet))
