"""replk_mm's Runner (what tools/train.py builds) resumes an mmengine run where it stopped,
reading the checkpoint weights-only (torch's default), not with full pickle."""

import pytest
import torch
from conftest import TINY_ARCH
from fast_test_helpers import one_torch_thread
from mmengine.model import BaseModel

from replk_mm import RepLKNet
from replk_mm.engine import ReplkRunner, ResumeError
from replk_mm.fileio import read_checkpoint


class TinyClassifier(BaseModel):

    def __init__(self):
        super().__init__()
        self.backbone = RepLKNet(TINY_ARCH, out_indices=(3, ))
        self.head = torch.nn.Linear(64, 2)

    def forward(self, inputs, labels, mode='loss'):
        logits = self.head(self.backbone(torch.stack(inputs))[0].mean((2, 3)))
        if mode == 'loss':
            return dict(loss=torch.nn.functional.cross_entropy(logits, torch.stack(labels)))
        return logits


def _dataset():
    g = torch.Generator().manual_seed(0)
    return [dict(inputs=torch.randn(3, 32, 32, generator=g), labels=torch.tensor(i % 2))
            for i in range(8)]


def _runner(work_dir, max_iters, resume=False, **kwargs):
    return ReplkRunner(**kwargs,
        model=TinyClassifier(), work_dir=str(work_dir),
        train_dataloader=dict(dataset=_dataset(), batch_size=2, num_workers=0,
                              sampler=dict(type='DefaultSampler', shuffle=True, seed=0),
                              collate_fn=dict(type='pseudo_collate')),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=1e-3)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False),
                           logger=dict(type='LoggerHook', interval=1)),
        resume=resume, randomness=dict(seed=0), experiment_name=f'run{max_iters}{resume}')


def test_resume_continues_from_saved_iteration(tmp_path, monkeypatch):
    # tests resuming, not conv speed: the conv autotuner decides by its cost model
    monkeypatch.setenv('REPLK_DW_CONV_AUTOTUNE', 'model')
    with one_torch_thread():
        _train_stop_and_resume(tmp_path)


def _train_stop_and_resume(tmp_path):
    first = _runner(tmp_path, max_iters=2)
    first.train()
    saved_state = first.optim_wrapper.state_dict()['state']

    assert 'message_hub' in read_checkpoint(tmp_path / 'iter_2.pth')  # weights-only

    resumed = _runner(tmp_path, max_iters=4, resume=True)
    resumed.load_or_resume()
    assert resumed.iter == 2
    loaded = resumed.optim_wrapper.state_dict()['state']
    assert loaded.keys() == saved_state.keys()
    for key in saved_state:
        torch.testing.assert_close(loaded[key]['exp_avg'], saved_state[key]['exp_avg'])
    resumed.train()
    assert resumed.iter == 4
    assert (tmp_path / 'iter_4.pth').exists()


def test_resume_from_another_models_checkpoint_says_resuming_needs_the_same_model(tmp_path):
    """Training state of another model (a 3-class head): resuming restores the optimizer too,
    so partial loading cannot apply; the error says so and points at load_from."""
    other = TinyClassifier()
    other.head = torch.nn.Linear(64, 3)
    path = str(tmp_path / 'other.pth')
    torch.save({'meta': dict(epoch=0, iter=2), 'message_hub': {},
                'state_dict': other.state_dict()}, path)
    runner = _runner(tmp_path, max_iters=4, resume=True, load_from=path,
                     cfg=dict(allow_partial_load=True))  # as --allow-partial
    with pytest.raises(ResumeError) as info:
        runner.load_or_resume()
    message = str(info.value)
    for expected in ("head.weight: checkpoint (3, 64) vs model (2, 64)",
                     'needs the same model and optimizer', '--allow-partial does not apply',
                     f'--cfg-options load_from={path}'):
        assert expected in message, message
    assert runner.iter == 0
