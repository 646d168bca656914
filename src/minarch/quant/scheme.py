"""A quantization scheme as a frozen record, so a study file can list schemes to sweep."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import nn

from minarch.errors import QuantError
from minarch.quant.fold import fold_batchnorm
from minarch.quant.weights import Granularity, cast, check_bits, check_granularity, quantize_weights


@dataclass(frozen=True)
class QuantScheme:
    """Integer ``bits`` fake-quantize weights; 'fp16' / 'bf16' round them to that float format."""

    bits: int | Literal["fp16", "bf16"]
    granularity: Granularity = "channel"
    fold_bn: bool = True

    def __post_init__(self) -> None:
        if self.bits not in ("fp16", "bf16"):
            check_bits(self.bits)
        check_granularity(self.granularity)
        if not isinstance(self.fold_bn, bool):
            raise QuantError(f"fold_bn must be true or false, got {self.fold_bn!r}")

    @property
    def label(self) -> str:
        if isinstance(self.bits, str):
            return self.bits
        suffix = "" if self.granularity == "channel" else "-tensor"
        return f"int{self.bits}{suffix}"


def quantize(model: nn.Module, scheme: QuantScheme) -> nn.Module:
    """An eval-mode copy of ``model`` under ``scheme``; the original is left untouched."""
    prepared = fold_batchnorm(model) if scheme.fold_bn else model
    if isinstance(scheme.bits, str):
        return cast(prepared, scheme.bits).eval()
    return quantize_weights(prepared, scheme.bits, granularity=scheme.granularity).eval()
