"""The memory layout the exact engines (plain, fused) train a model in.

A fixed rule, so a run's layout, and with it its last bits, follows from its
configuration and device alone.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

# The narrowest 2-d convolution (output channels) that trains channels-last on a CPU:
# packs of CNNs with 2 or 3 channels measured 1.23-1.45x slower channels-last (8 of 8
# pairs), 8 to 32 1.16-2x faster (11 of 11), 4 no clear difference (benchmarks/RESULTS.md,
# "Memory layout by width").
MIN_CHANNELS_LAST_WIDTH = 4


def memory_format(model: nn.Module, device: torch.device) -> torch.memory_format:
    """channels_last for models whose 2-d convolutions are all at least
    ``MIN_CHANNELS_LAST_WIDTH`` channels wide, on a CPU; else the default."""
    widths = [m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)]
    if device.type == "cpu" and widths and min(widths) >= MIN_CHANNELS_LAST_WIDTH:
        return torch.channels_last
    return torch.contiguous_format


def in_layout(x: Tensor, layout: torch.memory_format) -> Tensor:
    """``x`` in ``layout`` where that applies (4-d tensors), else as it is."""
    return x.contiguous(memory_format=layout) if x.dim() == 4 else x
