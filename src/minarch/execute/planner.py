"""Plan a study: its runs, their sizes, and the packs they train in."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from types import MappingProxyType
from typing import TYPE_CHECKING

from minarch.data import dataset_info
from minarch.errors import MinarchError, ModelError, SpecError
from minarch.execute.pack import Pack, group_packs
from minarch.models import analytic_counts, describe
from minarch.spec import DatasetSpec, ModelChoice, RunConfig, StudySpec, expand
from minarch.spec.count import count_runs
from minarch.spec.derive import derived_runs
from minarch.spec.settings import StructuredPrune
from minarch.spec.sizes import SizeKey, extension_capacity
from minarch.store import NewRun

if TYPE_CHECKING:
    from torch import nn

DEFAULT_MAX_RUNS = 100_000  # a study above this is a typo more often than a plan
MAX_PARAMETERS = 10**9  # minarch sweeps small networks; this bounds memory, not ambition
MAX_PARAMETER_TENSORS = 10_000  # ResNet-1202 has about 3,600
# FLOPs of inputs larger than this are counted on the meta device (no memory);
# smaller ones on the CPU, which is about twice as fast for them.
META_COUNT_VALUES = 3 * 256 * 256


@dataclass(frozen=True)
class PlannedRun:
    config: RunConfig
    label: str
    params: int
    flops: int

    def new_run(self) -> NewRun:
        config = self.config
        return NewRun(
            id=config.id,
            pack_key=config.pack_key,
            config=config.dump(),
            dataset=config.dataset.name,
            family=config.model.family,
            model=self.label,
            lr=config.training.lr,
            weight_decay=config.training.weight_decay,
            seed=config.seed,
            params=self.params,
            flops=self.flops,
            parent_id=config.derived.parent if config.derived else None,
            variant=self.variant,
        )

    @property
    def variant(self) -> str:
        """'base', or the pipeline and setting: 'retrain structured-global 0.6'."""
        derived = self.config.derived
        return "base" if derived is None else f"{derived.pipeline} {derived.setting.label}"


@dataclass(frozen=True)
class Plan:
    study: StudySpec
    text: str
    runs: tuple[PlannedRun, ...]

    def packs(self) -> list[Pack]:
        """The plan's packs, in plan order."""
        return group_packs(run.config for run in self.runs)

    def extension_limit(self) -> int:
        """At most how many runs the study's extensions (grid and sizes) can add to it."""
        study = self.study
        grid = 2 * study.hpspace.max_extensions if study.hpspace.extend_grid else 0
        sizes = extension_capacity(study.models)
        if not grid and not sizes:
            return 0
        extended = count_runs(study, extra_lr=grid, extra_wd=grid, extra_sizes=sizes)
        return extended - count_runs(study)


def plan_study(
    study: StudySpec,
    text: str,
    *,
    extra_lr: Sequence[float] = (),
    extra_wd: Sequence[float] = (),
    extra_sizes: Mapping[SizeKey, Sequence] = MappingProxyType({}),
    max_runs: int = DEFAULT_MAX_RUNS,
) -> Plan:
    """Expand the study, derived runs after their parents, and size every architecture.

    Raises on unbuildable or oversized architectures, and on more than
    ``max_runs`` runs (counted before any is expanded). ``extra_lr`` and
    ``extra_wd`` are grid extensions (``hpspace.extend_grid``), ``extra_sizes``
    size extensions (``extend: true`` on a models entry).
    """
    count = count_runs(
        study,
        extra_lr=len(extra_lr),
        extra_wd=len(extra_wd),
        extra_sizes={key: len(values) for key, values in extra_sizes.items()},
    )
    if count > max_runs:
        raise SpecError(
            f"the study has {count:,} runs, more than the limit of {max_runs:,} "
            "(shrink its grids, or raise the limit with --max-runs)"
        )
    base = expand(study, extra_lr=extra_lr, extra_wd=extra_wd, extra_sizes=extra_sizes)
    configs = base + derived_runs(study, base)
    return Plan(study, text, tuple(_sized(config) for config in configs))


def _sized(config: RunConfig) -> PlannedRun:
    params = _measure(config.dataset, config.model)[0]
    label = describe(config.model.family, config.model.config)
    return PlannedRun(config, label, params, forward_flops(config))


def forward_flops(config: RunConfig) -> int:
    """A run's forward FLOPs per sample. A derived run's size is its parent's until
    it is pruned: structured targets scale FLOPs."""
    flops = _measure(config.dataset, config.model)[1]
    if config.derived is not None and isinstance(config.derived.setting, StructuredPrune):
        flops = round(flops * config.derived.setting.flops_remaining)
    return flops


@cache
def _measure(dataset: DatasetSpec, model: ModelChoice) -> tuple[int, int]:
    """Parameters and per-sample FLOPs, once per (dataset shape, architecture).

    By arithmetic when the family has a count (no model built, no torch); else the
    model is built, within the same limits, and torch counts it.
    """
    label = describe(model.family, model.config)
    try:
        info = dataset_info(dataset.name, path=dataset.path, image_size=dataset.image_size)
        counts = analytic_counts(model.family, model.config, info.input_shape, info.num_classes)
        if counts is not None:
            _check_size(counts.parameters, counts.tensors)
            return counts.parameters, counts.flops
        net = _bounded_build(model, info.input_shape, info.num_classes)
    except MinarchError as exc:
        raise type(exc)(f"{label} on {dataset.name}: {exc}") from None
    return _count_built(net, f"{label} on {dataset.name}", info.input_shape)


def _count_built(net: nn.Module, where: str, input_shape: tuple[int, ...]) -> tuple[int, int]:
    from minarch.models import count_flops, count_parameters

    if math.prod(input_shape) > META_COUNT_VALUES:  # a forward would allocate gigabytes
        net = net.to("meta")
    try:
        return count_parameters(net), count_flops(net, input_shape)
    except Exception as exc:  # a plugin family's forward: the family's to fix, not minarch's
        raise ModelError(
            f"{where}: its forward pass on a {input_shape} input failed "
            f"while counting FLOPs ({type(exc).__name__}: {_first_line(exc)})"
        ) from None


def _first_line(exc: Exception) -> str:
    return next((line for line in str(exc).splitlines() if line.strip()), "")


def _check_size(parameters: int, tensors: int) -> None:
    """Refuse a model too large to plan: too many parameters, or too many layers."""
    if parameters > MAX_PARAMETERS:
        raise ModelError(f"more than {MAX_PARAMETERS:,} parameters")
    if tensors > MAX_PARAMETER_TENSORS:
        raise ModelError(f"more than {MAX_PARAMETER_TENSORS:,} parameter tensors (layers)")


def _bounded_build(model: ModelChoice, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Build a family's model that has no count, refusing an oversized one while it is still
    on the meta device, before memory is spent.

    Parameters are counted as modules register them: a billion-wide layer is
    refused at once, a million-layer stack after ``MAX_PARAMETER_TENSORS``.
    """
    from torch.nn.modules.module import register_module_parameter_registration_hook

    from minarch.models import build_model

    tensors = elements = 0

    def count(_module: nn.Module, _name: str, param: nn.Parameter | None) -> None:
        nonlocal tensors, elements
        if param is not None:
            tensors, elements = tensors + 1, elements + param.numel()
            _check_size(elements, tensors)

    handle = register_module_parameter_registration_hook(count)
    try:
        return build_model(model.family, model.config, input_shape, num_classes)
    finally:
        handle.remove()
