"""Parameters and FLOPs of RepLKNet models, counted with mmengine's analysis tools."""
import torch


def count_params(model):
    return sum(p.numel() for p in model.parameters())


def count_flops(model, input_shape=(3, 224, 224), forward=None):
    """Multiply-accumulates of one forward pass (the FLOPs convention of the paper).

    `forward` (optional) wraps the model, e.g. to call a detector's backbone + neck only.
    Convolutions are counted through their native (traceable) implementation.
    """
    from mmengine.analysis import FlopAnalyzer
    module = forward if forward is not None else model
    inputs = torch.zeros(1, *input_shape, device=next(model.parameters()).device)
    was_training = model.training
    model.eval()
    try:
        analyzer = FlopAnalyzer(module, (inputs, ))
        analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        return analyzer.total()
    finally:
        model.train(was_training)
