"""The memory layout the exact engines (plain, fused) train a model in.

A fixed rule, so a run's layout, and with it its last bits, follows from its
configuration and device alone.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def memory_format(model: nn.Module, device: torch.device) -> torch.memory_format:
    """channels_last for models with 2-d convolutions on a CPU, where a training step
    measured 8-50 % faster (benchmarks/RESULTS.md); else the default."""
    convolutional = any(isinstance(m, nn.Conv2d) for m in model.modules())
    if device.type == "cpu" and convolutional:
        return torch.channels_last
    return torch.contiguous_format


def in_layout(x: Tensor, layout: torch.memory_format) -> Tensor:
    """``x`` in ``layout`` where that applies (4-d tensors), else as it is."""
    return x.contiguous(memory_format=layout) if x.dim() == 4 else x
