"""Which engine trains a pack, and how many members train at once (the memory plan).

The choice is a fixed rule, not a timed probe: a probe would make the engine,
and with it a run's last bits, depend on how busy the machine was.
benchmarks/RESULTS.md has the measurements behind the rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn.utils import parametrize

from minarch.models import count_flops
from minarch.train.budget import (
    CUDA_MEMORY_FRACTION,
    TENSORS_PER_ACTIVATION,
    TENSORS_PER_PARAMETER,
    cpu_budget,
)
from minarch.train.fleet import linear_chain

if TYPE_CHECKING:
    from minarch.data import Dataset

# Below this many members "auto" trains plain: the fused gain is small there and
# the plain engine is the bit-exact reference.
MIN_FUSED_MEMBERS = 4
# On a CPU, models up to this many forward FLOPs per sample train batched:
# their steps are per-op overhead, which the batched forward shares between
# the members (benchmarks/bench_engines.py, RESULTS.md).
CPU_BATCHED_MAX_FLOPS = 20_000
# The batched engine's fleet width on a CPU: a ladder pack of 3 seeds fills it.
CPU_BATCHED_LANES = 3
# Bounds of a batched evaluation call's images: below, per-call overhead
# dominates; above, nothing is gained.
MIN_EVAL_IMAGES = 32
MAX_EVAL_IMAGES = 4096


def choose_engine(
    model: nn.Module, input_shape: tuple[int, ...], members: int, device: torch.device
) -> str:
    """The engine "auto" trains a pack of ``members`` copies of ``model`` with on ``device``.

    Batched or not follows from the model and the device alone: batched
    rounds differently from plain, so choosing it by member count would make
    a run's numbers depend on the pack it was scheduled in (a resumed pack is
    smaller). A GPU always trains batched. On a CPU, linear chains (MLPs)
    train exactly: fused for ``MIN_FUSED_MEMBERS`` or more, where sharing the
    batch and the optimizer step pays, else plain. Fused and plain give the
    same bits, so that choice may follow the member count; and fused needs
    no lanes, which a one-seed grid would fill with ghosts (a member per
    fleet, three times the work). Other models train batched when their steps
    are overhead-bound (forward FLOPs per sample up to
    ``CPU_BATCHED_MAX_FLOPS``, measured in benchmarks/RESULTS.md), else plain.
    A parametrized model (fake-quantized weights for QAT) trains plain: the
    batched forward calls each member with its plain parameters only.
    """
    if any(parametrize.is_parametrized(m) for m in model.modules()):
        return "plain"
    if device.type == "cuda":
        return "batched"
    if linear_chain(model) is not None:
        return "fused" if members >= MIN_FUSED_MEMBERS else "plain"
    if overhead_bound(count_flops(model, input_shape)):
        return "batched"
    return "plain"


def overhead_bound(forward_flops: int) -> bool:
    """Whether a model's CPU steps are per-op overhead more than arithmetic, which the
    batched engine pays once for a whole fleet: "auto" trains it batched on a CPU."""
    return forward_flops <= CPU_BATCHED_MAX_FLOPS


def batched_lanes(device: torch.device) -> int | None:
    """The batched engine's fixed fleet width on a CPU (None: as wide as memory allows).

    Fixed so a member's numbers do not depend on its pack: batched kernels
    round by shape. On a GPU the fleet is as wide as memory allows instead,
    so there a member's numbers are the same only up to round-off across packs.
    """
    return CPU_BATCHED_LANES if device.type == "cpu" else None


@dataclass(frozen=True)
class MemoryPlan:
    """How a pack fits its process's share of the device: fleet width and evaluation batch."""

    members: int  # members per fleet; a larger pack is cut into fleets before training
    eval_images: int  # images per batched evaluation call (each seen by every member)


def memory_plan(
    model: nn.Module, data: Dataset, batch_size: int, pack: int, budget: float
) -> MemoryPlan:
    """Fleet width (at most ``pack``) and evaluation batch within ``budget`` bytes.

    Per member it counts the parameters with their gradients, optimizer states
    and divergence snapshots, the batch's input copy and its activations kept
    for backward with their gradients. Evaluation runs between steps, when
    only the parameters and states are held: the rest of the budget goes to
    the evaluation batch's inputs and activations (none kept). A budget too
    small for one member still gives one.
    """
    parameters = sum(p.numel() for p in model.parameters())
    activations = activations_per_sample(model, data)
    inputs = math.prod(data.train_x.shape[1:])
    held = 4 * TENSORS_PER_PARAMETER * parameters
    per_member = held + 4 * batch_size * (inputs + TENSORS_PER_ACTIVATION * activations)
    members = max(1, min(pack, int(budget // per_member)))
    left = budget - members * held
    per_image = 4 * members * (inputs + activations)
    eval_images = min(MAX_EVAL_IMAGES, max(MIN_EVAL_IMAGES, int(left // per_image)))
    return MemoryPlan(members, eval_images)


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


def memory_budget(device: torch.device, share: float = 1.0) -> float:
    """Bytes a fleet may plan for: its process's ``share`` of ``device``.

    ``share`` is the fraction of the device this process holds (a Ray task's
    ``--gpus-per-pack``, or one over the workers on the device), so processes
    sharing a device do not each plan for all of it.
    """
    if device.type == "cuda":
        free, total = torch.cuda.mem_get_info(device)
        return min(free, CUDA_MEMORY_FRACTION * share * total)
    return cpu_budget(share)
