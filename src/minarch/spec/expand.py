"""Expand a study into runs: the product of every grid in the file."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel, ValidationError

from minarch.data import dataset_names
from minarch.errors import SpecError
from minarch.models import config_class, family_names
from minarch.spec.identity import digest
from minarch.spec.messages import describe_error, excerpt, excerpt_name
from minarch.spec.schema import DatasetSpec, StudySpec, TrainingConfig, grid_values
from minarch.spec.settings import Setting
from minarch.spec.sizes import ENTRY_KEYS, SizeKey, entry_extension

# Fields of a run that may differ inside one pack (trained as one fused computation).
PACK_VARYING = ("lr", "weight_decay", "seed")


@dataclass(frozen=True)
class ModelChoice:
    """A model family with one concrete size."""

    family: str
    config: BaseModel

    def dump(self, *, exclude_defaults: bool) -> dict[str, Any]:
        fields = self.config.model_dump(mode="json", exclude_defaults=exclude_defaults)
        return {"family": self.family, **fields}


@dataclass(frozen=True)
class Derivation:
    """How a derived run's model comes from a trained parent run.

    ``setting`` is the compression applied to the parent (spec/settings.py);
    ``base`` is the uncompressed run a derived run's accuracy is compared with
    (the parent itself, or the first run of an iterative-pruning chain, or the
    unpruned run at the same grid point when retraining over the grid).
    """

    parent: str
    pipeline: str  # finetune | retrain | imp | qat
    setting: Setting
    base: str

    def dump(self) -> dict[str, Any]:
        return {
            "parent": self.parent,
            "pipeline": self.pipeline,
            "setting": self.setting.to_dict(),
            "base": self.base,
        }


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines one training run, fully resolved."""

    dataset: DatasetSpec
    model: ModelChoice
    training: TrainingConfig
    seed: int
    derived: Derivation | None = None

    def dump(self, *, exclude_defaults: bool = False) -> dict[str, Any]:
        dumped = {
            "dataset": self.dataset.model_dump(mode="json", exclude_defaults=exclude_defaults),
            "model": self.model.dump(exclude_defaults=exclude_defaults),
            "training": self.training.model_dump(mode="json", exclude_defaults=exclude_defaults),
            "seed": self.seed,
        }
        if self.derived is not None:  # absent for ordinary runs, so their ids never change
            dumped["derived"] = self.derived.dump()
        return dumped

    @cached_property
    def id(self) -> str:
        return digest(self.dump(exclude_defaults=True))

    @cached_property
    def pack_key(self) -> str:
        """Runs with equal pack keys differ only in lr, weight decay and seed.

        A derived run's ``base`` is the run at its own lr, wd and seed, so it
        varies with them and is left out too.
        """
        canonical = self.dump(exclude_defaults=True)
        canonical.pop("seed")
        for name in PACK_VARYING[:2]:
            canonical["training"].pop(name, None)
        if "derived" in canonical:
            canonical["derived"].pop("base")
        return digest(canonical)


def expand(
    study: StudySpec,
    *,
    extra_lr: Sequence[float] = (),
    extra_wd: Sequence[float] = (),
    extra_sizes: Mapping[SizeKey, Sequence[Any]] = MappingProxyType({}),
) -> list[RunConfig]:
    """The study's ordinary runs in a stable order; errors name the offending field.

    ``extra_lr`` and ``extra_wd`` extend the grid (``hpspace.extend_grid``),
    ``extra_sizes`` the size fields of ``models`` entries (``extend: true``).
    """
    datasets = _datasets(study)
    models = [
        choice
        for i, entry in enumerate(study.models)
        for choice in _models(i, entry, {f: v for (j, f), v in extra_sizes.items() if j == i})
    ]
    recipe = study.training.model_dump(exclude={"lr", "weight_decay"})
    lrs = [*grid_values(study.training.lr), *extra_lr]
    wds = [*grid_values(study.training.weight_decay), *extra_wd]
    runs = [
        RunConfig(dataset, model, TrainingConfig(**recipe, lr=lr, weight_decay=wd), seed)
        for dataset, model, lr, wd, seed in itertools.product(
            datasets, models, lrs, wds, study.seed_list()
        )
    ]
    return list({run.id: run for run in runs}.values())


def _datasets(study: StudySpec) -> list[DatasetSpec]:
    known = dataset_names()
    specs = study.dataset_specs()
    for i, spec in enumerate(specs):
        if spec.name not in known:
            raise SpecError(
                f"datasets[{i}]: unknown dataset {excerpt(spec.name)} (known: {', '.join(known)})"
            )
    return specs


def _models(
    index: int, entry: dict[str, Any], extra: Mapping[str, Sequence[Any]]
) -> list[ModelChoice]:
    """The sizes one ``models[i]`` entry stands for (lists are grids), ``extra`` sizes added."""
    where = f"models[{index}]"
    family = entry.get("family")
    if family not in family_names():
        raise SpecError(
            f"{where}.family: expected one of {', '.join(family_names())}, got {excerpt(family)}"
        )
    entry_extension(index, entry)
    schema = config_class(family)
    grids: dict[str, list[Any]] = {}
    for name, value in entry.items():
        if name == "family" or name in ENTRY_KEYS:
            continue
        if name not in schema.model_fields:
            valid = ", ".join(schema.model_fields)
            raise SpecError(
                f"{where}.{excerpt_name(name)}: unknown field for family {family} (valid: {valid})"
            )
        values = value if isinstance(value, list) else [value]
        if not values:
            raise SpecError(f"{where}.{name}: empty grid, give at least one value")
        for v in values:  # family configs accept infinity; no size is infinite
            if isinstance(v, float) and not math.isfinite(v):
                raise SpecError(f"{where}.{name}: expected a finite number, got {v}")
        grids[name] = values
    for name, values in extra.items():
        grids[name] = [*grids.get(name, [schema.model_fields[name].default]), *values]
    choices = []
    for combo in itertools.product(*grids.values()):
        values = dict(zip(grids, combo, strict=True))
        try:
            choices.append(ModelChoice(family, schema(**values)))
        except ValidationError as exc:
            error = exc.errors()[0]
            field = ".".join(str(p) for p in error["loc"]) or "entry"
            raise SpecError(f"{where}.{field}: {describe_error(error)}") from None
    return choices
