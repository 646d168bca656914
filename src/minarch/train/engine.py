"""Which engine trains a pack, and how many members the fused engine trains at once.

The choice is a fixed rule, not a timed probe: a probe would make the engine,
and with it a run's last bits, depend on how busy the machine was.
benchmarks/RESULTS.md has the measurements behind the rule.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import torch
from torch import nn

from minarch.train.fleet import linear_chain

if TYPE_CHECKING:
    from minarch.data import Dataset

# Below this many members "auto" trains plain: the fused gain is small there and
# the plain engine is the bit-exact reference.
MIN_FUSED_MEMBERS = 4
# Fraction of the device's memory a fleet may plan to use; the rest is headroom
# for the allocator, the data and (on a shared CPU machine) everyone else.
CUDA_MEMORY_FRACTION = 0.6
CPU_MEMORY_FRACTION = 0.25
# Per parameter: the weight, its gradient, up to two optimizer states, and the
# copies of the weight and states that the divergence check rewinds to.
TENSORS_PER_PARAMETER = 7
# Per activation: the forward value kept for backward and its gradient.
TENSORS_PER_ACTIVATION = 2


def choose_engine(model: nn.Module, members: int, device: torch.device) -> str:
    """Return "fused" or "plain" for a pack of ``members`` copies of ``model`` on ``device``.

    On a GPU fusing is assumed to pay (small models leave it idle one at a
    time; not yet measured). On a CPU the fused engine runs each member's own
    layers one after another, for the plain engine's exact numbers, and gains
    by sharing the batch, the optimizer step and the bookkeeping: that pays for
    linear chains (MLPs), whose small steps those dominate, and is at parity
    for convolutional models, which spend their time in the convolutions.
    The engine never changes a member's numbers on a CPU, so a pack cut to
    fewer members (a resume) may switch engines.
    """
    if members < MIN_FUSED_MEMBERS:
        return "plain"
    if device.type == "cuda":
        return "fused"
    return "fused" if linear_chain(model) is not None else "plain"


def fleet_chunk_size(model: nn.Module, data: Dataset, batch_size: int) -> int:
    """How many members fit in memory at once, from parameters and one batch's activations."""
    device = data.train_x.device
    parameters = sum(p.numel() for p in model.parameters())
    per_member = 4 * (
        TENSORS_PER_PARAMETER * parameters
        + TENSORS_PER_ACTIVATION * batch_size * activations_per_sample(model, data)
    )
    return max(1, int(memory_budget(device) // per_member))


def activations_per_sample(model: nn.Module, data: Dataset) -> int:
    """Elements output by the model's leaf modules for one sample (a forward on zeros)."""
    total = 0

    def count(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        total += output.numel()

    leaves = [m for m in model.modules() if not any(True for _ in m.children())]
    handles = [m.register_forward_hook(count) for m in leaves]
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros((1, *data.train_x.shape[1:])))
    finally:
        for handle in handles:
            handle.remove()
    return total


def memory_budget(device: torch.device) -> float:
    """Bytes a fleet may plan for on ``device``."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return CUDA_MEMORY_FRACTION * free
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return CPU_MEMORY_FRACTION * physical
