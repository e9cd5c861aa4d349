"""Library functions behind tools/train.py and tools/test.py that need no dataset."""
import pytest
import torch.distributed as dist

from replk_mm import apis


def test_close_distributed_destroys_the_process_group(tmp_path):
    dist.init_process_group('gloo', init_method=f'file://{tmp_path / "store"}', rank=0,
                            world_size=1)
    assert dist.is_initialized()
    apis.close_distributed()
    assert not dist.is_initialized()
    apis.close_distributed()  # nothing to do: no error


def test_runners_reject_bad_input(tmp_path):
    with pytest.raises(FileNotFoundError, match='does not exist'):
        apis.train_runner(str(tmp_path / 'missing.py'))
    config = tmp_path / 'no_scope.py'
    config.write_text('model = dict(type="X")\n')
    with pytest.raises(ValueError, match='default_scope'):
        apis.train_runner(str(config))
    with pytest.raises(ValueError, match='unknown launcher'):
        apis.train_runner(str(config), launcher='ssh')
    with pytest.raises(FileNotFoundError, match='checkpoint'):
        apis.test_runner(str(config), str(tmp_path / 'missing.pth'))
