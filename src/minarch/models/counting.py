"""Parameter and FLOP counts: the size axes every analysis plots against."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters only, so frozen parts do not count toward model size."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Forward FLOPs (= 2 × MACs) for one sample, as counted by torch's FlopCounterMode.

    The model runs in eval mode so batch-norm statistics are not touched; each
    module's training flag is restored afterwards. Attention runs on its math
    backend, since the counter has no formula for the CPU flash kernel and
    would leave the attention products out.
    """
    reference = next(model.parameters(), None)
    device = reference.device if reference is not None else torch.device("cpu")
    dtype = reference.dtype if reference is not None else torch.float32
    modes = {module: module.training for module in model.modules()}
    model.eval()
    counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), counter:
            model(torch.zeros((1, *input_shape), device=device, dtype=dtype))
    finally:
        for module, training in modes.items():
            module.training = training
    return int(counter.get_total_flops())
