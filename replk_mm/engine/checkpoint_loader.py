"""Make mmengine 0.10.7's checkpoint loading work under torch's ``weights_only`` default.

torch >= 2.6 loads with ``weights_only=True`` by default. mmengine 0.10.7 calls ``torch.load``
without the argument, and its own checkpoints hold a pickled message hub, numpy arrays and
config objects, so ``runner.resume()`` fails. We re-register mmengine's local and http(s)
loaders with ``weights_only=False`` (mmengine's behaviour under the torch it was written for).
As with any pickle, load only checkpoints you trust.
"""
import os.path as osp

import torch
from mmengine.runner.checkpoint import CheckpointLoader


@CheckpointLoader.register_scheme(prefixes='', force=True)
def load_from_local(filename, map_location=None):
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename} can not be found')
    return torch.load(filename, map_location=map_location, weights_only=False)


@CheckpointLoader.register_scheme(prefixes=('http://', 'https://'), force=True)
def load_from_url(filename, map_location=None, model_dir=None, progress=True):
    # Like mmengine's loader: rank 0 downloads first, the others read its cached copy.
    # torch.hub's loader defaults to weights_only=True as well.
    from mmengine.dist import barrier, get_dist_info
    from torch.hub import load_state_dict_from_url

    def load():
        return load_state_dict_from_url(filename, model_dir=model_dir, map_location=map_location,
                                        progress=progress, weights_only=False)

    rank, world_size = get_dist_info()
    checkpoint = load() if rank == 0 else None
    if world_size > 1:
        barrier()
        if rank > 0:
            checkpoint = load()
    return checkpoint
