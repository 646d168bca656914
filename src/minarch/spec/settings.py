"""Compression settings: what is done to a trained model, one frozen type per method.

A setting's canonical dict (``to_dict``) is stored with its evaluation, hashed
into its evaluation key and into the id of a run derived with it, so it never
changes: a field added later is left out of it at its default, so that older
settings keep their keys. ``from_dict`` reads any stored one back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from minarch.errors import SpecError

DEFAULT_TOLERANCE = 0.01  # structured pruning: FLOPs within this fraction of the target
DEFAULT_CRITERION = "l1"  # structured pruning: filters ranked by their L1 norm (Li et al. 2017)


class Calibration(BaseModel):
    """How activation ranges are measured: training batches, min/max or a percentile."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    method: Literal["minmax", "percentile"] = "minmax"
    percentile: Annotated[float, Field(gt=50, le=100)] = 99.99
    batches: Annotated[int, Field(gt=0)] = 4


@dataclass(frozen=True)
class StructuredPrune:
    """Whole channels and heads removed until ``flops_remaining`` of the FLOPs are left."""

    kind: ClassVar[str] = "prune"
    pruner: ClassVar[str] = "structured"

    scope: Literal["uniform", "global"]
    flops_remaining: float
    residual: Literal["prune", "keep"]
    tolerance: float = DEFAULT_TOLERANCE
    criterion: str = DEFAULT_CRITERION

    @property
    def method(self) -> str:
        return f"structured-{self.scope}"

    @property
    def label(self) -> str:
        criterion = "" if self.criterion == DEFAULT_CRITERION else f" {self.criterion}"
        return f"{self.method} {self.flops_remaining:g}{criterion}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "method": self.method,
            "flops_remaining": self.flops_remaining,
            "residual": self.residual,
            **({"tolerance": self.tolerance} if self.tolerance != DEFAULT_TOLERANCE else {}),
            **({"criterion": self.criterion} if self.criterion != DEFAULT_CRITERION else {}),
        }


@dataclass(frozen=True)
class UnstructuredPrune:
    """The smallest-magnitude weights zeroed until ``sparsity`` of them are zero."""

    kind: ClassVar[str] = "prune"
    pruner: ClassVar[str] = "unstructured"

    scope: Literal["global", "layer"]
    sparsity: float

    @property
    def method(self) -> str:
        return f"unstructured-{self.scope}"

    @property
    def label(self) -> str:
        return f"{self.method} {self.sparsity:g}"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "method": self.method, "sparsity": self.sparsity}


@dataclass(frozen=True)
class ImpRound(UnstructuredPrune):
    """Round ``round`` of iterative magnitude pruning, its survivors rewound to ``rewind``."""

    round: int
    rewind: Literal["init"] = "init"

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "round": self.round, "rewind": self.rewind}


class _Quantized:
    """What every quantization setting's dict and label start with."""

    kind: ClassVar[str] = "quant"
    method: str
    bits: int

    @property
    def label(self) -> str:
        return f"{self.method} {self.bits}"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "method": self.method, "bits": self.bits}


@dataclass(frozen=True)
class WeightQuant(_Quantized):
    """Simulated integer weights; with ``calibration``, every layer's input at the same bits too.

    Quantization-aware training learns under such a setting (weights only).
    """

    quantizer: ClassVar[str] = "weights"

    bits: int
    granularity: Literal["channel", "tensor"]
    fold_bn: bool
    calibration: Calibration | None = None  # None: weights only

    @property
    def activations(self) -> bool:
        return self.calibration is not None

    @property
    def method(self) -> str:
        return f"{'weights+acts' if self.activations else 'weights'}-{self.granularity}"

    def to_dict(self) -> dict[str, Any]:
        calibration = {"calibration": self.calibration.model_dump()} if self.calibration else {}
        return {**super().to_dict(), "fold_bn": self.fold_bn, **calibration}


@dataclass(frozen=True)
class Cast(_Quantized):
    """Every float parameter rounded to a 16-bit float format."""

    quantizer: ClassVar[str] = "cast"
    bits: ClassVar[int] = 16

    dtype: Literal["fp16", "bf16"]

    @property
    def method(self) -> str:
        return self.dtype


@dataclass(frozen=True)
class Float32(_Quantized):
    """The float model itself measured as deployed on the CPU: the reference of int8."""

    quantizer: ClassVar[str] = "fp32"
    method: ClassVar[str] = "fp32"
    bits: ClassVar[int] = 32


@dataclass(frozen=True)
class Int8(_Quantized):
    """A real int8 CPU model, its activation ranges calibrated as ``calibration`` says."""

    quantizer: ClassVar[str] = "int8"
    method: ClassVar[str] = "int8"
    bits: ClassVar[int] = 8

    calibration: Calibration

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "calibration": self.calibration.model_dump()}


@dataclass(frozen=True)
class PrunedThenQuantized:
    """A one-shot unstructured pruning, then weight quantization: the (sparsity, bits) view."""

    kind: ClassVar[str] = "quant"

    pruning: UnstructuredPrune
    quantization: WeightQuant

    @property
    def method(self) -> str:
        return self.quantization.method

    @property
    def bits(self) -> int:
        return self.quantization.bits

    @property
    def label(self) -> str:
        return f"{self.quantization.label} after {self.pruning.label}"

    def to_dict(self) -> dict[str, Any]:
        return {**self.quantization.to_dict(), "after": self.pruning.to_dict()}


PruneSetting = StructuredPrune | UnstructuredPrune
QuantSetting = WeightQuant | Cast | Float32 | Int8 | PrunedThenQuantized
Setting = PruneSetting | QuantSetting


def from_dict(data: Mapping[str, Any]) -> Setting:
    """The setting a canonical dict stands for, as stored with evaluations and derived runs.

    Anything else (an unknown method, a missing or extra key) is an error, so
    ``from_dict(d).to_dict() == d`` always holds.
    """
    try:
        setting = _parse(dict(data))
    except (KeyError, TypeError, ValueError):
        setting = None
    if setting is None or setting.to_dict() != dict(data):
        raise SpecError(f"not a compression setting: {dict(data)!r}")
    return setting


def _parse(fields: dict[str, Any]) -> Setting | None:
    if "after" in fields:
        pruning = _parse(dict(fields.pop("after")))
        quantization = _parse(fields)
        if isinstance(pruning, UnstructuredPrune) and isinstance(quantization, WeightQuant):
            return PrunedThenQuantized(pruning, quantization)
        return None
    kind, method = fields.pop("kind"), fields.pop("method")
    family, _, variant = method.partition("-")
    calibration = fields.pop("calibration", None)
    calibration = Calibration(**calibration) if calibration is not None else None
    match kind, family:
        case "prune", "structured":
            return StructuredPrune(variant, **fields)
        case "prune", "unstructured":
            return (ImpRound if "round" in fields else UnstructuredPrune)(variant, **fields)
        case "quant", "weights" | "weights+acts":
            return WeightQuant(granularity=variant, calibration=calibration, **fields)
        case "quant", "fp16" | "bf16":
            return Cast(family)
        case "quant", "fp32":
            return Float32()
        case "quant", "int8" if calibration is not None:
            return Int8(calibration)
    return None
