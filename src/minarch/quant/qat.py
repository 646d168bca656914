"""Quantization-aware fine-tuning: train through fake-quantized weights, keep float weights.

The weights are parametrized, so any optimizer sees the ordinary float
parameters while every forward pass uses their quantized values; PyTorch's
fake-quantize ops pass gradients straight through (the straight-through
estimator), since the scale from max|w| keeps every weight inside the grid.

BatchNorm is not folded during training (it keeps learning, and the state dict
keeps the family's keys). With per-channel weights that is exact: folding
scales each output channel, and so its per-channel grid, by the same factor,
so ``quantize`` after ``finish_qat`` evaluates the grid that was trained.
Per-tensor grids are only approximately preserved by folding.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils import parametrize

from minarch.errors import QuantError
from minarch.quant.scheme import QuantScheme
from minarch.quant.weights import LAYERS, Granularity, fake_quantize


class FakeQuantizedWeight(nn.Module):
    """A parametrization: the weight as the quantized model will see it."""

    def __init__(self, bits: int, granularity: Granularity) -> None:
        super().__init__()
        self.bits, self.granularity = bits, granularity

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return fake_quantize(weight, self.bits, self.granularity)

    def extra_repr(self) -> str:
        return f"bits={self.bits}, granularity={self.granularity}"


def prepare_qat(model: nn.Module, scheme: QuantScheme) -> nn.Module:
    """A copy whose Conv/Linear weights train through ``scheme``'s weight quantizer.

    Activations stay in float while training; a scheme's activation bits are
    calibrated afterwards by ``quantize(finish_qat(model), scheme, calibration)``.
    """
    if isinstance(scheme.bits, str):
        raise QuantError(
            f"quantization-aware training needs integer weight bits, got {scheme.bits!r}"
        )
    prepared = copy.deepcopy(model)
    layers = [m for m in prepared.modules() if isinstance(m, LAYERS)]
    if not layers:
        raise QuantError("cannot prepare QAT: the model has no Conv or Linear layer")
    for layer in layers:
        if parametrize.is_parametrized(layer, "weight"):
            raise QuantError(f"cannot prepare QAT: {layer} is already parametrized")
        parametrize.register_parametrization(
            layer, "weight", FakeQuantizedWeight(scheme.bits, scheme.granularity)
        )
    return prepared


def finish_qat(model: nn.Module) -> nn.Module:
    """A copy with the fake quantizers removed and the trained float weights kept.

    Its state dict has the family's ordinary keys, so it loads into a freshly
    built model of the same configuration.
    """
    finished = copy.deepcopy(model)
    layers = [
        m
        for m in finished.modules()
        if parametrize.is_parametrized(m, "weight")
        and any(isinstance(p, FakeQuantizedWeight) for p in m.parametrizations.weight)
    ]
    if not layers:
        raise QuantError("finish_qat: the model has no fake-quantized weights; use prepare_qat")
    for layer in layers:
        parametrize.remove_parametrizations(layer, "weight", leave_parametrized=False)
    return finished
