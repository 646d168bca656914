"""Plan a study: its runs, their sizes, and the packs they train in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from minarch.data import dataset_info
from minarch.errors import MinarchError
from minarch.execute.pack import Pack, group_packs
from minarch.models import build_model, count_flops, count_parameters, describe
from minarch.spec import DatasetSpec, ModelChoice, RunConfig, StudySpec, expand
from minarch.spec.derive import derived_runs
from minarch.spec.settings import StructuredPrune
from minarch.store import NewRun


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


def plan_study(
    study: StudySpec, text: str, *, extra_lr: Sequence[float] = (), extra_wd: Sequence[float] = ()
) -> Plan:
    """Expand the study, derived runs after their parents, and size every architecture.

    Raises on unbuildable architectures. ``extra_lr`` and ``extra_wd`` are
    grid extensions (``hpspace.extend_grid``).
    """
    base = expand(study, extra_lr=extra_lr, extra_wd=extra_wd)
    configs = base + derived_runs(study, base)
    return Plan(study, text, tuple(_sized(config) for config in configs))


def _sized(config: RunConfig) -> PlannedRun:
    """A derived run's size is the parent's until it is pruned: structured targets scale FLOPs."""
    params, flops = _measure(config.dataset, config.model)
    if config.derived is not None and isinstance(config.derived.setting, StructuredPrune):
        flops = round(flops * config.derived.setting.flops_remaining)
    return PlannedRun(config, describe(config.model.family, config.model.config), params, flops)


@cache
def _measure(dataset: DatasetSpec, model: ModelChoice) -> tuple[int, int]:
    """Parameters and per-sample FLOPs, once per (dataset shape, architecture)."""
    try:
        info = dataset_info(dataset.name, path=dataset.path, image_size=dataset.image_size)
        net = build_model(model.family, model.config, info.input_shape, info.num_classes)
    except MinarchError as exc:
        label = describe(model.family, model.config)
        raise type(exc)(f"{label} on {dataset.name}: {exc}") from None
    return count_parameters(net), count_flops(net, info.input_shape)
