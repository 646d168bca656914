"""How much memory a plan needs at its peak: its data plus its largest pack.

``minarch run`` loads every dataset it trains on before training, as uint8
images, and then trains packs; a pack holds, per member trained at once, what
``train.engine`` plans for (weights, gradients, optimizer states and one
batch's activations). An ``image_size`` of thousands of pixels or a huge
model needs more than the machine has, and is refused at plan time rather
than after minutes of decoding.

Activations are counted for the packs of each dataset and family with the
most FLOPs and the most parameters (activations grow with both, so the largest
pack is among them): by the family's count, without torch, or for a family
without one by a forward pass on the meta device (no memory).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from minarch.data import DatasetInfo, dataset_info
from minarch.errors import MinarchError
from minarch.execute.pack import Pack
from minarch.execute.planner import Plan, PlannedRun
from minarch.models import analytic_counts
from minarch.spec import ModelChoice
from minarch.train.budget import (
    TENSORS_PER_ACTIVATION,
    TENSORS_PER_PARAMETER,
    cpu_budget,
    physical_memory,
)

VALIDATION_SHARE = 0.25  # validation images per training image, at most, for built-in datasets
GIB = 2**30


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes of data held during training, and of the largest pack (with its label)."""

    data: int
    pack: int
    pack_label: str

    @property
    def peak(self) -> int:
        return self.data + self.pack

    def describe(self) -> str:
        return (
            f"about {self.peak / GIB:.1f} GiB at the peak ({self.data / GIB:.1f} GiB of data "
            f"+ {self.pack / GIB:.1f} GiB for {self.pack_label})"
        )


def peak_memory(the_plan: Plan) -> MemoryEstimate:
    """The plan's data plus its largest pack, as ``minarch run`` holds them on a CPU."""
    data = sum(_data_bytes(spec) for spec in {r.config.dataset for r in the_plan.runs})
    packs = {pack.first.pack_key: pack for pack in the_plan.packs()}
    largest = max(
        ((_pack_bytes(packs[run.config.pack_key]), packs[run.config.pack_key].label)
         for run in _candidates(the_plan.runs)),
        default=(0, "no pack"),
    )  # fmt: skip
    return MemoryEstimate(data, *largest)


def check_memory(the_plan: Plan, available: int | None = None) -> MemoryEstimate:
    """The estimate; ``MinarchError`` when it exceeds ``available`` (the machine's memory)."""
    estimate = peak_memory(the_plan)
    available = physical_memory() if available is None else available
    if estimate.peak > available:
        raise MinarchError(
            f"the study needs {estimate.describe()}, more than this machine's "
            f"{available / GIB:.1f} GiB: lower image_size or the largest model, "
            "or pass --force to try anyway"
        )
    return estimate


def _data_bytes(spec) -> int:
    info = dataset_info(spec.name, path=spec.path, image_size=spec.image_size)
    images = (info.train_size or 0) * (1 + VALIDATION_SHARE)
    return math.ceil(images * math.prod(info.input_shape))  # uint8: one byte per value


def _candidates(runs: tuple[PlannedRun, ...]) -> list[PlannedRun]:
    """Per dataset, family and batch size: the run of most FLOPs and the one of most parameters."""
    groups: dict[tuple, list[PlannedRun]] = {}
    for run in runs:
        key = (run.config.dataset, run.config.model.family, run.config.training.batch_size)
        groups.setdefault(key, []).append(run)
    chosen = {}
    for group in groups.values():
        for size in (lambda r: r.flops, lambda r: r.params):
            run = max(group, key=size)
            chosen[run.config.pack_key] = run
    return list(chosen.values())


def _pack_bytes(pack: Pack) -> int:
    """What ``train.engine`` plans for the members of ``pack`` it trains at once on a CPU."""
    config = pack.first
    spec = config.dataset
    info = dataset_info(spec.name, path=spec.path, image_size=spec.image_size)
    parameters, activations = _member_sizes(config.model, info)
    batch = min(config.training.batch_size, info.train_size or config.training.batch_size)
    member = 4 * (TENSORS_PER_PARAMETER * parameters + TENSORS_PER_ACTIVATION * batch * activations)
    # Members train one after another, or in fleets chunked to the memory budget.
    return min(len(pack.configs) * member, max(member, int(cpu_budget())))


def _member_sizes(model: ModelChoice, info: DatasetInfo) -> tuple[int, int]:
    """A member's parameters and activations per sample (``engine.memory_plan``'s terms)."""
    counts = analytic_counts(model.family, model.config, info.input_shape, info.num_classes)
    if counts is not None:
        return counts.parameters, counts.activations
    from types import SimpleNamespace

    import torch

    from minarch.models import build_model
    from minarch.train.engine import activations_per_sample

    net = build_model(model.family, model.config, info.input_shape, info.num_classes)
    parameters = sum(p.numel() for p in net.parameters())
    shaped = SimpleNamespace(train_x=torch.empty((0, *info.input_shape), device="meta"))
    with torch.device("meta"):  # the forward allocates nothing, whatever the image size
        activations = activations_per_sample(net.to("meta"), shaped)
    return parameters, activations
