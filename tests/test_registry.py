"""`custom_imports=['replk_mm']` makes RepLKNet buildable in every scope, in any import order."""
import subprocess
import sys
import textwrap

import pytest

BUILD_IN_ALL_SCOPES = textwrap.dedent('''
    from mmengine.config import Config
    from mmengine.registry import DefaultScope, init_default_scope
    arch = dict(large_kernel_sizes=[7, 7, 7, 7], layers=[1, 1, 1, 1],
                channels=[8, 8, 8, 8], small_kernel=3)
    cfg = Config(dict(custom_imports=dict(imports=['replk_mm'], allow_failed_imports=False)))
    from mmengine.utils import import_modules_from_strings
    import_modules_from_strings(**cfg.custom_imports)
    import replk_mm
    from mmseg.registry import MODELS as SEG
    from mmdet.registry import MODELS as DET
    from mmpretrain.registry import MODELS as PRE
    assert type(SEG.build(dict(type='RepLKNet', arch=arch))) is replk_mm.RepLKNet
    assert type(DET.build(dict(type='RepLKNet', arch=arch))) is replk_mm.RepLKNet
    for registry in (SEG, DET, PRE):
        assert type(registry.build(dict(type='replk_mm.RepLKNet', arch=arch))) \\
            is replk_mm.RepLKNet
    # mmpretrain keeps its own RepLKNet under its own name
    assert PRE.get('RepLKNet') is not replk_mm.RepLKNet
    # a whole mmdet / mmseg model config naming plain RepLKNet builds in its default scope
    for scope, registry in (('mmseg', SEG), ('mmdet', DET)):
        with DefaultScope.overwrite_default_scope(scope):
            assert type(registry.build(dict(type='RepLKNet', arch=arch))) is replk_mm.RepLKNet
    print('OK')
''')

ORDERS = {
    'replk_first': 'import replk_mm\nimport mmdet.models\nimport mmseg.models\n'
                   'import mmpretrain.models\n',
    'downstream_first': 'import mmdet.models\nimport mmpretrain.models\nimport mmseg.models\n'
                        'import replk_mm\n',
    'mmpretrain_then_replk_then_mmdet': 'import mmpretrain.models\nimport replk_mm\n'
                                        'import mmdet.models\n',
    'registries_only': 'import mmseg.registry, mmdet.registry\nimport replk_mm\n',
}


@pytest.mark.parametrize('order', sorted(ORDERS))
def test_build_in_all_scopes_in_any_import_order(order):
    result = subprocess.run([sys.executable, '-c', ORDERS[order] + BUILD_IN_ALL_SCOPES],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith('OK')


def test_only_installed_scopes_are_registered():
    from replk_mm import RepLKNet
    from replk_mm.registry import register_downstream
    assert register_downstream('RepLKNet', RepLKNet, scopes=('not_a_package_xyz', 'mmseg')) \
        == ['mmseg']


def test_conflicting_registration_is_an_error():
    import torch

    from replk_mm.registry import register_downstream
    with pytest.raises(KeyError, match='already registers a different'):
        register_downstream('RepLKNet', torch.nn.Identity, scopes=('mmseg', ))
