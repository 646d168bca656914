"""A quantization scheme as a frozen record, so a study file can list schemes to sweep."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from minarch.errors import QuantError
from minarch.quant.acts import CALIBRATION_BATCH, CALIBRATIONS, Calibration, quantize_activations
from minarch.quant.fold import fold_batchnorm
from minarch.quant.registry import QUANTIZERS, Calibrate, Quantizer
from minarch.quant.weights import (
    MAX_BITS,
    MIN_BITS,
    Granularity,
    cast,
    check_bits,
    check_granularity,
    quantize_weights,
)
from minarch.spec import settings


def _check_activation_bits(bits: object) -> None:
    if isinstance(bits, bool) or not isinstance(bits, int) or not MIN_BITS <= bits <= MAX_BITS:
        raise QuantError(
            f"unsupported activation bit width {bits!r}: expected an integer from "
            f"{MIN_BITS} to {MAX_BITS}, or None for weights only"
        )


@dataclass(frozen=True)
class QuantScheme:
    """Integer ``bits`` fake-quantize weights; 'fp16' / 'bf16' round them to that float format.

    ``activations`` (bits, or None for weights only) also fake-quantizes the
    input of every Conv/Linear layer, with ranges calibrated by ``calibration``
    ('minmax', or 'percentile' at ``percentile``) on data given to ``quantize``.
    """

    bits: int | Literal["fp16", "bf16"]
    granularity: Granularity = "channel"
    fold_bn: bool = True
    activations: int | None = None
    calibration: Calibration = "minmax"
    percentile: float = 99.99

    def __post_init__(self) -> None:
        if self.bits not in ("fp16", "bf16"):
            check_bits(self.bits)
        check_granularity(self.granularity)
        if not isinstance(self.fold_bn, bool):
            raise QuantError(f"fold_bn must be true or false, got {self.fold_bn!r}")
        if self.activations is not None:
            _check_activation_bits(self.activations)
            if isinstance(self.bits, str):
                raise QuantError(
                    f"activations={self.activations} needs integer weight bits: "
                    f"{self.bits!r} casts weights only"
                )
        if self.calibration not in CALIBRATIONS:
            raise QuantError(
                f"unknown calibration {self.calibration!r}: expected 'minmax' or 'percentile'"
            )
        p = self.percentile
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 50 < p <= 100:
            raise QuantError(f"percentile must be a number in (50, 100], got {p!r}")

    @property
    def label(self) -> str:
        """Short and unique per scheme: 'w4-channel', 'w8a8-tensor-p99.9', 'fp16'."""
        if isinstance(self.bits, str):
            label = self.bits
        else:
            acts = f"a{self.activations}" if self.activations is not None else ""
            label = f"w{self.bits}{acts}-{self.granularity}"
            if self.activations is not None and self.calibration == "percentile":
                label += f"-p{self.percentile:g}"
        return label if self.fold_bn else f"{label}-nofold"

    @property
    def method(self) -> str:
        """The scheme's kind without its bit widths, as analyses group curves acc(b)."""
        if isinstance(self.bits, str):
            return self.bits
        what = "weights" if self.activations is None else "weights+acts"
        return f"{what}-{self.granularity}"


def quantize(
    model: nn.Module,
    scheme: QuantScheme,
    calibration: torch.Tensor | Iterable[torch.Tensor] | None = None,
) -> nn.Module:
    """An eval-mode copy of ``model`` under ``scheme``; the original is left untouched.

    ``calibration`` (normalized model inputs: one tensor, or an iterable of
    batches) is needed only when the scheme quantizes activations.
    """
    if scheme.activations is not None and calibration is None:
        raise QuantError(
            f"scheme {scheme.label} quantizes activations and needs calibration data: pass "
            "calibration= a few batches of normalized training inputs"
        )
    prepared = fold_batchnorm(model) if scheme.fold_bn else model
    if isinstance(scheme.bits, str):
        return cast(prepared, scheme.bits).eval()
    quantized = quantize_weights(prepared, scheme.bits, granularity=scheme.granularity).eval()
    if scheme.activations is not None:
        quantize_activations(
            quantized,
            scheme.activations,
            calibration,
            method=scheme.calibration,
            percentile=scheme.percentile,
        )
    return quantized


def scheme_of(setting: settings.WeightQuant) -> QuantScheme:
    """The scheme a weight (and activation) quantization setting simulates."""
    calibration = setting.calibration or settings.Calibration()
    return QuantScheme(
        bits=setting.bits,
        granularity=setting.granularity,
        fold_bn=setting.fold_bn,
        activations=setting.bits if setting.activations else None,
        calibration=calibration.method,
        percentile=calibration.percentile,
    )


def _apply(
    model: nn.Module,
    setting: settings.WeightQuant,
    input_shape: tuple[int, ...],
    calibrate: Calibrate,
) -> nn.Module:
    calibration = setting.calibration
    inputs = calibrate(calibration.batches * CALIBRATION_BATCH) if calibration else None
    return quantize(model, scheme_of(setting), calibration=inputs)


QUANTIZERS.register(settings.WeightQuant.quantizer, Quantizer(_apply, deployed=False))
