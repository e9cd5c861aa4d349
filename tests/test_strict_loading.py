"""Tools that load a whole model load strictly: a checkpoint that does not fit (other task,
other arch, deploy vs training form, nothing matching) is an error listing the keys and the
likely cause; --allow-partial / allow_partial_load loads what fits and says what did not.
A deploy-form init_cfg checkpoint is an error, and --resume needs training state."""
import glob
import os.path as osp

import pytest
import torch
from conftest import TINY_ARCH
from robustness_helpers import one_thread, write_ade20k, write_tiny_seg_config

from replk_mm import RepLKNet, apis, switch_to_deploy
from replk_mm.apis.builder import build_model
from replk_mm.engine import ResumeError
from replk_mm.fileio import read_checkpoint
from replk_mm.models.checkpoint import CheckpointMismatchError, KeyReport, load_backbone_checkpoint


def _logs(work_dir):
    """Everything the runners logged under ``work_dir`` (mmengine's log files)."""
    text = ''
    for path in sorted(glob.glob(osp.join(str(work_dir), '*', '*.log'))):
        with open(path) as f:
            text += f.read()
    return text


def _save_model(cfg_path, out, **meta):
    from replk_mm.apis import load_config
    model = build_model(load_config(cfg_path))
    torch.save({'state_dict': model.state_dict(), 'meta': dict(meta)}, out)
    return model.state_dict()


@pytest.fixture(scope='module')
def ckpts(tmp_path_factory):
    """The tiny seg config and checkpoints that fit it, or do not in the ways users meet."""
    base = tmp_path_factory.mktemp('strict')
    write_ade20k(str(base / 'data'))
    config = write_tiny_seg_config(str(base / 'tiny.py'), str(base / 'data'), iters=4,
                                   validate=True)
    wide = write_tiny_seg_config(str(base / 'wide.py'), str(base / 'data'), iters=4,
                                 channels=(8, 16, 32, 96))
    paths = {name: str(base / f'{name}.pth') for name in
             ('own', 'other_arch', 'detector', 'unrelated')}
    own = _save_model(config, paths['own'])
    _save_model(wide, paths['other_arch'])
    # a detector sharing the backbone: backbone.* plus mmdet's neck / rpn / roi heads
    detector = {k: v for k, v in own.items() if k.startswith('backbone.')}
    detector.update({'neck.lateral_convs.0.conv.weight': torch.zeros(16, 8, 1, 1),
                     'rpn_head.rpn_conv.weight': torch.zeros(16, 16, 3, 3),
                     'roi_head.bbox_head.0.fc_cls.weight': torch.zeros(5, 64)})
    torch.save({'state_dict': detector}, paths['detector'])
    torch.save({'state_dict': {'fc.weight': torch.zeros(2, 2)}}, paths['unrelated'])
    # the deploy form, written by the re-parameterization tool
    import tools.deploy.reparameterize
    paths['deploy'] = str(base / 'deploy.pth')
    deploy_config = str(base / 'deploy_config.py')
    tools.deploy.reparameterize.main([config, paths['own'], paths['deploy'],
                                      '--deploy-config', deploy_config])
    return dict(base=base, config=config, deploy_config=deploy_config, **paths)


@pytest.fixture(scope='module')
def runner(ckpts):
    """A test runner of the tiny config (its load_checkpoint is what tools/test.py calls)."""
    return apis.test_runner(ckpts['config'], ckpts['own'], work_dir=str(ckpts['base'] / 'r'))


@pytest.mark.parametrize('name, expected', [
    ('other_arch', [r'shape mismatches \(\d+\)', 'checkpoint .* vs model',
                    'likely cause: the shapes differ: a checkpoint of another arch']),
    ('detector', ['missing keys in checkpoint \\(\\d+\\): \\[.*decode_head',
                  r'\.\.\. and \d+ more',  # many keys: the first ones and a count
                  "likely cause: a checkpoint of a detector .*'roi_head'.* but the config "
                  'builds a segmentation model']),
    ('deploy', ['lkb_reparam', 'likely cause: the checkpoint is re-parameterized \\(deploy '
                'form\\).*small_kernel_merged=True']),
    ('unrelated', ['no key of the checkpoint matches the model']),
])
def test_a_checkpoint_that_does_not_fit_is_an_error(runner, ckpts, name, expected):
    with pytest.raises(CheckpointMismatchError) as info:
        runner.load_checkpoint(ckpts[name])
    message = str(info.value)
    assert ckpts[name] in message
    for pattern in expected:
        assert __import__('re').search(pattern, message), (pattern, message)
    if name != 'unrelated':  # nothing to load partially there
        assert '--allow-partial' in message and 'allow_partial_load = True' in message


def test_own_checkpoint_loads_and_deploy_config_takes_deploy_checkpoint(runner, ckpts):
    runner.load_checkpoint(ckpts['own'])
    # --tta wraps the segmentor in mmseg's SegTTAModel: its checkpoint still fits
    tta = apis.test_runner(ckpts['config'], ckpts['own'], work_dir=str(ckpts['base'] / 'tta'),
                           tta=True)
    tta.load_checkpoint(ckpts['own'])
    deploy = apis.test_runner(ckpts['deploy_config'], ckpts['deploy'],
                         work_dir=str(ckpts['base'] / 'd'))
    deploy.load_checkpoint(ckpts['deploy'])
    with pytest.raises(CheckpointMismatchError, match='in training form but the model was '
                                                      'built with small_kernel_merged=True'):
        deploy.load_checkpoint(ckpts['own'])


def test_test_py_refuses_then_allow_partial_evaluates(ckpts, monkeypatch):
    import tools.test
    monkeypatch.setenv('REPLK_DW_CONV_BACKEND', 'native')
    args = [ckpts['config'], ckpts['detector'], '--work-dir', str(ckpts['base'] / 't')]
    with one_thread():
        with pytest.raises(CheckpointMismatchError, match='a checkpoint of a detector'):
            tools.test.main(args)
        metrics = tools.test.main(args + ['--allow-partial'])
    assert 'mIoU' in metrics
    assert 'Partial loading was asked for' in _logs(ckpts['base'] / 't')


def test_load_from_is_strict_unless_allowed(ckpts):
    options = {'load_from': ckpts['other_arch']}
    strict = apis.train_runner(ckpts['config'], work_dir=str(ckpts['base'] / 'lf1'),
                          cfg_options=options)
    with pytest.raises(CheckpointMismatchError, match='allow_partial_load = True'):
        strict.load_or_resume()
    partial = apis.train_runner(ckpts['config'], work_dir=str(ckpts['base'] / 'lf2'),
                           cfg_options=options, allow_partial=True)
    partial.load_or_resume()
    assert 'shape mismatches' in _logs(ckpts['base'] / 'lf2')
    # the fitting tensors were loaded: the first stem conv is the checkpoint's
    saved = read_checkpoint(ckpts['other_arch'])['state_dict']
    key = 'backbone.stem.0.conv.weight'
    torch.testing.assert_close(partial.model.state_dict()[key], saved[key])


@pytest.mark.parametrize('name, kind', [('own', 'a weights-only checkpoint'),
                                        ('deploy', 'a deploy-form checkpoint')])
def test_resume_needs_training_state(ckpts, name, kind):
    runner = apis.train_runner(ckpts['config'], work_dir=str(ckpts['base'] / f'res_{name}'),
                          resume=ckpts[name])
    with pytest.raises(ResumeError, match=f'holds no training state .*it is {kind}.*'
                                          f'load_from={ckpts[name]}'):
        runner.load_or_resume()


def test_reparameterize_tool_is_strict_unless_allowed(ckpts, tmp_path):
    import tools.deploy.reparameterize
    out = str(tmp_path / 'deploy.pth')
    with pytest.raises(CheckpointMismatchError, match='(?s)another arch.*--allow-partial'):
        tools.deploy.reparameterize.main([ckpts['config'], ckpts['other_arch'], out])
    assert not osp.exists(out)
    tools.deploy.reparameterize.main([ckpts['config'], ckpts['other_arch'], out,
                                      '--allow-partial'])
    assert osp.isfile(out)


def test_deploy_form_init_cfg_into_training_backbone_is_an_error(tmp_path):
    deploy = RepLKNet(TINY_ARCH).eval()
    switch_to_deploy(deploy)
    torch.save(deploy.state_dict(), tmp_path / 'deploy_backbone.pth')
    model = RepLKNet(TINY_ARCH, init_cfg=dict(type='Pretrained',
                                              checkpoint=str(tmp_path / 'deploy_backbone.pth')))
    with pytest.raises(CheckpointMismatchError,
                       match=r'deploy_backbone\.pth: the checkpoint is re-parameterized '
                             r'\(deploy form\).*small_kernel_merged=True'):
        model.init_weights()
    # the same checkpoint into a deploy-form backbone is fine
    load_backbone_checkpoint(RepLKNet(TINY_ARCH, small_kernel_merged=True),
                             str(tmp_path / 'deploy_backbone.pth'), strict=True)


def test_key_report_shortens_long_lists():
    keys = [f'k{i}' for i in range(26)]
    report = KeyReport(missing=keys[1:], unexpected=[], mismatched=[], model_keys=keys,
                       checkpoint_keys=keys[:1])
    text = report.describe(max_listed=10)
    assert 'missing keys in checkpoint (25):' in text and '... and 15 more' in text
    assert 'k10' in text and 'k11' not in text


def test_resume_with_nothing_to_resume_falls_back_to_load_from(ckpts):
    """--resume in a fresh work dir of a config with load_from starts from load_from (mmengine
    would resume *from* load_from as if it were a training checkpoint)."""
    work_dir = ckpts['base'] / 'fallback'
    runner = apis.train_runner(ckpts['config'], work_dir=str(work_dir), resume=True,
                               cfg_options={'load_from': ckpts['own']})
    runner.load_or_resume()
    assert f"nothing to resume in {work_dir} (no last_checkpoint file): loading load_from " \
           f"{ckpts['own']}" in _logs(work_dir)
    saved = read_checkpoint(ckpts['own'])['state_dict']
    key = 'decode_head.conv_seg.weight'
    torch.testing.assert_close(runner.model.state_dict()[key], saved[key])
    assert runner.iter == 0
