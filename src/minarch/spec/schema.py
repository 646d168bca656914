"""The study file's schema: what a user may write, with defaults and limits.

A study is a designed sweep. Datasets, model sizes, learning rate and weight
decay may be grids; everything else is one value shared by the whole study.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from minarch.spec.settings import DEFAULT_CRITERION, DEFAULT_TOLERANCE, Calibration

STUDY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
MAX_NAME = 255  # the store's column width
MAX_SEED = 2**63 - 1  # the store keeps seeds as signed 64-bit integers
MAX_EXPONENT = 300  # 10**e is a normal positive float (lr, weight decay) only for |e| < 308


class _Frozen(BaseModel):
    # An infinite or NaN number is never a meaningful setting: refuse it with the field's name.
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="wrap")
    @classmethod
    def _no_bool_numbers(cls, value: Any, handler: Callable[[Any], Any]) -> Any:
        parsed = handler(value)
        if bool_as_number(value, parsed):
            raise ValueError("expected a number, not true or false")
        return parsed


def bool_as_number(given: Any, parsed: Any) -> bool:
    """Whether a YAML true or false became a number (pydantic takes ``true`` for 1).

    ``width: true`` is a slip, not a width of 1: it must not train, under the
    same run id, as if 1 had been written.
    """
    if isinstance(given, bool):
        return not isinstance(parsed, bool)
    if isinstance(given, list | tuple) and isinstance(parsed, list | tuple):
        return any(bool_as_number(g, p) for g, p in zip(given, parsed, strict=False))
    return False


class DatasetSpec(_Frozen):
    """One dataset of the study, with how its splits are made."""

    name: str
    train_fraction: Annotated[float, Field(gt=0, le=1)] = 1.0
    validation: Literal["test"] | Annotated[float, Field(gt=0, lt=1)] = "test"
    path: str | None = None
    image_size: Annotated[int, Field(gt=0)] | None = None


class LogGrid(_Frozen):
    """Base-10 exponents from ``start`` to ``stop`` (inclusive) in steps of ``step``.

    Or around a prior: ``center`` ± ``half_width``, the thesis's way of
    writing a grid (``center: -1, half_width: 0.8, step: 0.2`` is 9 values).
    """

    start: float | None = None
    stop: float | None = None
    center: float | None = None
    half_width: Annotated[float, Field(ge=0)] | None = None
    step: Annotated[float, Field(gt=0)]

    @model_validator(mode="after")
    def _bounds(self) -> LogGrid:
        explicit, around = (self.start, self.stop), (self.center, self.half_width)
        if None in explicit and None in around:
            raise ValueError("give start and stop, or center and half_width")
        if None not in explicit and None not in around:
            raise ValueError("give either start and stop or center and half_width, not both")
        if None in around and self.stop < self.start:
            raise ValueError(f"stop ({self.stop}) must not be below start ({self.start})")
        start, stop = self._span()
        if max(abs(start), abs(stop)) > MAX_EXPONENT:
            raise ValueError(f"exponents must lie between -{MAX_EXPONENT} and {MAX_EXPONENT}")
        if not math.isfinite((stop - start) / self.step):
            raise ValueError("step is too small")
        return self

    def _span(self) -> tuple[float, float]:
        if self.center is not None and self.half_width is not None:
            return self.center - self.half_width, self.center + self.half_width
        return self.start, self.stop

    def size(self) -> int:
        """How many values the grid has, without listing them."""
        start, stop = self._span()
        return math.floor((stop - start) / self.step + 1e-9) + 1

    def exponents(self) -> list[float]:
        start, _ = self._span()
        return [round(start + k * self.step, 10) for k in range(self.size())]

    def values(self) -> list[float]:
        return [10**exponent for exponent in self.exponents()]


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


Augmentation = Literal["none", "crop", "crop-flip"]
AUGMENTATIONS: tuple[str, ...] = get_args(Augmentation)
"""The augmentations a study may ask for (``data/augment.py`` implements each)."""


class Recipe(_Frozen):
    """Training settings shared by every member of a pack (all but lr, wd, seed).

    Declared once: the study file's ``training:`` section is validated by it, and
    the trainer (``minarch.train``) reads it, so both accept exactly the same recipes.
    """

    optimizer: Literal["sgd", "adamw"] = "sgd"
    momentum: Annotated[float, Field(ge=0, lt=1)] = 0.9
    batch_size: Annotated[int, Field(gt=0)] = 128
    epochs: Annotated[int, Field(gt=0)] = 10
    schedule: Literal["constant", "step", "cosine"] = "step"
    milestones: tuple[Annotated[float, Field(gt=0, lt=1)], ...] = (0.5, 0.75)
    gamma: Annotated[float, Field(gt=0, le=1)] = 0.1
    warmup_epochs: Annotated[float, Field(ge=0)] = 0.0
    augmentation: Augmentation = "none"
    label_smoothing: Annotated[float, Field(ge=0, lt=1)] = 0.0
    # Part of a run's id only when not fp32, so older ids stay valid.
    precision: Literal["fp32", "tf32", "bf16"] = "fp32"

    @field_validator("milestones")
    @classmethod
    def _increasing(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if list(value) != sorted(set(value)):
            raise ValueError("milestones must be strictly increasing fractions of training")
        return value


class TrainingSpec(Recipe):
    """The study's recipe; lr and weight decay may be lists or log10 grids."""

    lr: PositiveGrid = 0.1
    weight_decay: NonNegativeGrid = 1e-4


class TrainingConfig(Recipe):
    """One run's recipe: every value resolved."""

    lr: Annotated[float, Field(gt=0)] = 0.1
    weight_decay: Annotated[float, Field(ge=0)] = 1e-4


Fraction = Annotated[float, Field(ge=0, le=1)]


def _nonempty_unique(values: tuple) -> tuple:
    if len(set(values)) != len(values):
        raise ValueError("values must not repeat")
    return values


class AnalysisSpec(_Frozen):
    """Thresholds of the analyses (docs/methods.md A.1-A.5), documented defaults.

    Not part of any run's configuration: changing a threshold re-analyses the
    same runs, it never renames or retrains them. ``val_min_before``, a rule
    docs/methods.md does not have, is accepted and ignored, so study files and
    stores that still name it keep loading.
    """

    chance_margin: Fraction = 0.10  # unstable: final train acc < chance + this x (1 - chance)
    min_loss_drop: Fraction = 0.10  # unstable: final train loss > (1 - this) x ln(classes)
    seed_spread: Fraction = 0.10  # unstable: final val acc spread over seeds (diverged at chance)
    val_loss_rise: Annotated[float, Field(ge=0)] = 0.10  # overfitting: final val loss / min - 1
    val_acc_drop: Fraction = 0.01  # ... and final val acc this far below its best epoch
    gap: Fraction = 0.10  # overfitting: final train acc - final val acc above this
    stability_q: Annotated[float, Field(gt=0, le=1)] = 1.0  # P_stable, P_min: stable seeds
    # P_min's accuracy bar per dataset, absolute (fashion-mnist: 0.90); else the next two
    target_accuracy: dict[str, Annotated[float, Field(gt=0, le=1)]] = {}
    accuracy_fraction: Annotated[float, Field(gt=0, le=1)] = 0.90  # P_min: share of best
    p_min_reference: Literal["all", "family"] = "all"  # best of every family, or its own
    bootstrap: Annotated[int, Field(ge=0)] = 1000  # resamples for P_min's interval; 0: none
    bootstrap_seed: Annotated[int, Field(ge=0)] = 0
    prune_delta: Fraction = 0.01  # redundancy R_delta: largest sparsity with drop <= this
    collapse_margin: Fraction = 0.10  # collapse: accuracy <= chance + this x (1 - chance)
    quant_delta: Fraction = 0.01  # minimal bits: fewest bits with drop <= this
    roi: tuple[Annotated[float, Field(gt=0)], ...] = (0.5, 1.0)  # x-ROI widths, in points
    ellipse_sde: Annotated[float, Field(gt=0)] = 2.0  # n of the n-SDE confidence ellipse
    alpha: Annotated[float, Field(gt=0, lt=1)] = 0.05  # a trend is a relation at p < this
    min_trend_n: Annotated[int, Field(ge=3)] = 4  # ... and with at least this many points
    difficulty_order: tuple[str, ...] = ()  # datasets easy to hard; else measured (A.5)
    family_tolerance: Fraction = 0.05  # claim (e): families within this of each other's best

    _unique = field_validator("difficulty_order")(_nonempty_unique)

    @model_validator(mode="before")
    @classmethod
    def _retired(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if key != "val_min_before"}
        return data


OpenFraction = Annotated[float, Field(gt=0, lt=1)]


class StructuredPruning(_Frozen):
    """Filter pruning (docs/methods.md B.3) to fractions of FLOPs REMAINING.

    ``criterion`` ranks the filters: their L1 norm (the default), L2 norm, or
    the scale of the batch norm after them (network slimming).
    """

    scope: Annotated[tuple[Literal["uniform", "global"], ...], Field(min_length=1)] = (
        "uniform",
        "global",
    )
    flops_remaining: Annotated[tuple[OpenFraction, ...], Field(min_length=1)] = (0.8, 0.6, 0.4)
    residual: Literal["prune", "keep"] = "prune"  # keep: prune only inside residual blocks
    tolerance: Annotated[float, Field(gt=0, lt=0.5)] = DEFAULT_TOLERANCE  # FLOPs near the target
    criterion: Literal["l1", "l2", "bn-scale"] = DEFAULT_CRITERION  # one per prune/criteria file

    _unique = field_validator("scope", "flops_remaining")(_nonempty_unique)


class UnstructuredPruning(_Frozen):
    """Weight-magnitude pruning to exact fractions of zeroed weights."""

    scope: Annotated[tuple[Literal["global", "layer"], ...], Field(min_length=1)] = ("global",)
    sparsity: Annotated[tuple[OpenFraction, ...], Field(min_length=1)] = (
        0.5,
        0.7,
        0.8,
        0.9,
        0.95,
        0.98,
        0.99,
    )

    _unique = field_validator("scope", "sparsity")(_nonempty_unique)


class FineTune(_Frozen):
    """A short training from the pruned (or quantized) weights, the study's recipe otherwise."""

    epochs: Annotated[int, Field(gt=0)] = 3
    lr_factor: Annotated[float, Field(gt=0, le=1)] = 0.1  # fine-tune lr = parent's lr x this


class Retrain(_Frozen):
    """Retraining the pruned architecture from a fresh He initialisation (the thesis)."""

    # parent: one retraining at the parent's own lr and wd; grid: the study's whole
    # lr x wd grid, each pruned from the run at the prior (the thesis's study).
    over: Literal["parent", "grid"] = "parent"


class IterativePruning(_Frozen):
    """Iterative magnitude pruning with rewinding to the initial weights (lottery tickets)."""

    rounds: Annotated[int, Field(gt=0, le=20)] = 3
    rate: OpenFraction = 0.2  # fraction of the remaining weights pruned per round
    scope: Literal["global", "layer"] = "global"


class PruneSpec(_Frozen):
    """The study's ``prune:`` section: methods, targets and pipelines (docs/methods.md A.3, B.3)."""

    structured: StructuredPruning | None = None
    unstructured: UnstructuredPruning | None = None
    pipelines: Annotated[
        tuple[Literal["oneshot", "finetune", "retrain", "imp"], ...], Field(min_length=1)
    ] = ("oneshot",)
    finetune: FineTune = FineTune()
    retrain: Retrain = Retrain()
    imp: IterativePruning = IterativePruning()

    _unique = field_validator("pipelines")(_nonempty_unique)

    @model_validator(mode="after")
    def _consistent(self) -> PruneSpec:
        if self.structured is None and self.unstructured is None and self.pipelines != ("imp",):
            raise ValueError("give structured and/or unstructured pruning targets")
        if "retrain" in self.pipelines and self.structured is None:
            raise ValueError("the retrain pipeline needs structured pruning targets")
        return self


Bits = Annotated[int, Field(ge=2, le=16)]


class QuantAware(_Frozen):
    """Quantization-aware fine-tuning (straight-through estimator) at some bit widths."""

    bits: Annotated[tuple[Bits, ...], Field(min_length=1)]
    epochs: Annotated[int, Field(gt=0)] = 2
    lr_factor: Annotated[float, Field(gt=0, le=1)] = 0.1


class QuantizeSpec(_Frozen):
    """The study's ``quantize:`` section (docs/methods.md A.4)."""

    bits: Annotated[tuple[Bits, ...], Field(min_length=1)] = (16, 8, 6, 4, 3, 2)
    granularity: Annotated[tuple[Literal["channel", "tensor"], ...], Field(min_length=1)] = (
        "channel",
    )
    activations: bool = False  # also measure weights+activations (layer inputs at the same bits)
    casts: tuple[Literal["fp16", "bf16"], ...] = ("fp16", "bf16")
    calibration: Calibration = Calibration()
    fold_batchnorm: bool = True
    qat: QuantAware | None = None
    int8: bool = False  # real int8 CPU model: size, latency, accuracy against its twin
    with_pruning: bool = False  # also quantize every one-shot unstructured-pruned model

    _unique = field_validator("bits", "granularity", "casts")(_nonempty_unique)


class HpSpaceSpec(_Frozen):
    """How the lr x wd grid grows (docs/methods.md B.4): extended where a 1.0-ROI meets its edge."""

    prior: dict[Literal["lr", "weight_decay"], Annotated[float, Field(gt=0)]] = {}
    extend_grid: bool = False
    max_extensions: Annotated[int, Field(ge=0, le=20)] = 3


class ExecutionSpec(_Frozen):
    """How packs train: the pack engine, and what each pack asks of a Ray cluster
    (``--executor ray``); not part of run ids (the store records each run's engine).

    The command line's ``--engine``, ``--deterministic``, ``--gpus-per-pack`` and
    ``--cpus-per-pack`` win over these.
    """

    engine: Literal["auto", "plain", "fused", "batched"] = "auto"
    deterministic: bool = False  # deterministic algorithms (``minarch run --deterministic``)
    gpus_per_pack: Annotated[float, Field(ge=0)] | None = None  # 0.25: four packs per GPU
    cpus_per_pack: Annotated[float, Field(gt=0)] | None = None


class StudySpec(_Frozen):
    """A whole study file. Model entries are validated per family in expand.py."""

    name: str
    description: str = ""
    datasets: Annotated[list[str | DatasetSpec], Field(min_length=1)]
    models: Annotated[list[dict[str, Any]], Field(min_length=1)]
    training: TrainingSpec = TrainingSpec()
    seeds: (
        Annotated[int, Field(gt=0)]
        | Annotated[list[Annotated[int, Field(ge=0, le=MAX_SEED)]], Field(min_length=1)]
    ) = 3
    analysis: AnalysisSpec = AnalysisSpec()
    prune: PruneSpec | None = None
    quantize: QuantizeSpec | None = None
    hpspace: HpSpaceSpec = HpSpaceSpec()
    execution: ExecutionSpec = ExecutionSpec()

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not STUDY_NAME.fullmatch(value):
            raise ValueError("use letters, digits, '_', '.' and '-' only")
        if len(value) > MAX_NAME:
            raise ValueError(f"a study name has at most {MAX_NAME} characters")
        return value

    def dataset_specs(self) -> list[DatasetSpec]:
        return [DatasetSpec(name=d) if isinstance(d, str) else d for d in self.datasets]

    def seed_list(self) -> list[int]:
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)

    def seed_count(self) -> int:
        return self.seeds if isinstance(self.seeds, int) else len(self.seeds)


def grid_values(grid: float | list[float] | Log10) -> list[float]:
    """The concrete values of a float grid field, in file order."""
    if isinstance(grid, Log10):
        return grid.log10.values()
    return list(grid) if isinstance(grid, list) else [grid]


def grid_size(grid: float | list[float] | Log10) -> int:
    """How many values ``grid_values`` gives, without listing them."""
    if isinstance(grid, Log10):
        return grid.log10.size()
    return len(grid) if isinstance(grid, list) else 1
