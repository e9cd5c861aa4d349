from .runner import (
                     adapt_to_device,
                     close_distributed,
                     exit_if_distributed,
                     load_config,
                     test_runner,
                     train_runner,
)

__all__ = ['adapt_to_device', 'close_distributed', 'exit_if_distributed', 'load_config',
           'test_runner', 'train_runner']
