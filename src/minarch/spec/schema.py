"""The study file's schema: what a user may write, with defaults and limits.

A study is a designed sweep. Datasets, model sizes, learning rate and weight
decay may be grids; everything else is one value shared by the whole study.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

STUDY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DatasetSpec(_Frozen):
    """One dataset of the study, with how its splits are made."""

    name: str
    train_fraction: Annotated[float, Field(gt=0, le=1)] = 1.0
    validation: Literal["test"] | Annotated[float, Field(gt=0, lt=1)] = "test"
    path: str | None = None
    image_size: Annotated[int, Field(gt=0)] | None = None


class LogGrid(_Frozen):
    """Exponents start, start+step, ... up to stop (inclusive) of a base-10 grid."""

    start: float
    stop: float
    step: Annotated[float, Field(gt=0)]

    @model_validator(mode="after")
    def _ordered(self) -> LogGrid:
        if self.stop < self.start:
            raise ValueError(f"stop ({self.stop}) must not be below start ({self.start})")
        return self

    def values(self) -> list[float]:
        count = math.floor((self.stop - self.start) / self.step + 1e-9) + 1
        return [10 ** round(self.start + k * self.step, 10) for k in range(count)]


class Log10(_Frozen):
    log10: LogGrid


PositiveGrid = (
    Annotated[float, Field(gt=0)]
    | Annotated[list[Annotated[float, Field(gt=0)]], Field(min_length=1)]
    | Log10
)
NonNegativeGrid = (
    Annotated[float, Field(ge=0)]
    | Annotated[list[Annotated[float, Field(ge=0)]], Field(min_length=1)]
    | Log10
)


class RecipeFields(_Frozen):
    """Training settings shared by every member of a pack (all but lr, wd, seed)."""

    optimizer: Literal["sgd", "adamw"] = "sgd"
    momentum: Annotated[float, Field(ge=0, lt=1)] = 0.9
    batch_size: Annotated[int, Field(gt=0)] = 128
    epochs: Annotated[int, Field(gt=0)] = 10
    schedule: Literal["constant", "step", "cosine"] = "step"
    milestones: tuple[Annotated[float, Field(gt=0, lt=1)], ...] = (0.5, 0.75)
    gamma: Annotated[float, Field(gt=0, le=1)] = 0.1
    warmup_epochs: Annotated[float, Field(ge=0)] = 0.0
    augmentation: Literal["none", "crop", "crop-flip"] = "none"
    label_smoothing: Annotated[float, Field(ge=0, lt=1)] = 0.0

    @field_validator("milestones")
    @classmethod
    def _increasing(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if list(value) != sorted(set(value)):
            raise ValueError("milestones must be strictly increasing fractions of training")
        return value


class TrainingSpec(RecipeFields):
    """The study's recipe; lr and weight decay may be lists or log10 grids."""

    lr: PositiveGrid = 0.1
    weight_decay: NonNegativeGrid = 1e-4


class TrainingConfig(RecipeFields):
    """One run's recipe: every value resolved."""

    lr: Annotated[float, Field(gt=0)] = 0.1
    weight_decay: Annotated[float, Field(ge=0)] = 1e-4


Fraction = Annotated[float, Field(ge=0, le=1)]


class AnalysisSpec(_Frozen):
    """Thresholds of the analyses (METHODS.md A.1-A.2), documented defaults.

    Not part of any run's configuration: changing a threshold re-analyses the
    same runs, it never renames or retrains them.
    """

    chance_margin: Fraction = 0.10  # unstable: final train acc < chance + this x (1 - chance)
    min_loss_drop: Fraction = 0.10  # unstable: train loss fell less than this from epoch 1
    seed_spread: Fraction = 0.10  # unstable: final val acc spread over seeds above this
    val_loss_rise: Annotated[float, Field(ge=0)] = 0.10  # overfitting: final val loss / min - 1
    val_min_before: Fraction = 0.80  # ... with the val-loss minimum before this part of training
    gap: Fraction = 0.10  # overfitting: final train acc - final val acc above this
    stability_q: Annotated[float, Field(gt=0, le=1)] = 1.0  # P_min: share of stable seeds
    accuracy_fraction: Annotated[float, Field(gt=0, le=1)] = 0.90  # P_min: share of family best
    bootstrap: Annotated[int, Field(ge=0)] = 1000  # resamples for P_min's interval; 0: none
    bootstrap_seed: Annotated[int, Field(ge=0)] = 0
    prune_delta: Fraction = 0.01  # redundancy R_delta: largest sparsity with drop <= this
    collapse_margin: Fraction = 0.10  # collapse: accuracy <= chance + this x (1 - chance)
    quant_delta: Fraction = 0.01  # minimal bits: fewest bits with drop <= this
    roi: tuple[Annotated[float, Field(gt=0)], ...] = (0.5, 1.0)  # x-ROI widths, in points
    ellipse_sde: Annotated[float, Field(gt=0)] = 2.0  # n of the n-SDE confidence ellipse


class StudySpec(_Frozen):
    """A whole study file. Model entries are validated per family in expand.py."""

    name: str
    description: str = ""
    datasets: Annotated[list[str | DatasetSpec], Field(min_length=1)]
    models: Annotated[list[dict[str, Any]], Field(min_length=1)]
    training: TrainingSpec = TrainingSpec()
    seeds: (
        Annotated[int, Field(gt=0)]
        | Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)]
    ) = 3
    analysis: AnalysisSpec = AnalysisSpec()

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not STUDY_NAME.match(value):
            raise ValueError("use letters, digits, '_', '.' and '-' only")
        return value

    def dataset_specs(self) -> list[DatasetSpec]:
        return [DatasetSpec(name=d) if isinstance(d, str) else d for d in self.datasets]

    def seed_list(self) -> list[int]:
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)


def grid_values(grid: float | list[float] | Log10) -> list[float]:
    """The concrete values of a float grid field, in file order."""
    if isinstance(grid, Log10):
        return grid.log10.values()
    return list(grid) if isinstance(grid, list) else [grid]
