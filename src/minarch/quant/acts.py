"""Simulated activation quantization: the input of every Conv/Linear layer, calibrated once.

Affine (asymmetric) per-tensor, as deployed int8 CPU kernels quantize
activations (uint8 with a zero point): most layer inputs follow a ReLU, and a
symmetric grid would spend half its levels on negatives that never occur.
Measured on an MNIST MLP (92.3 %, 8-bit weights, min/max): 8-bit activations
lose under 0.1 pp either way, 4-bit lose 0.4 pp affine vs 1.9 pp symmetric,
3-bit 1.8 pp vs 22 pp. The range always contains 0, so zero (ReLU outputs,
padding) is exact, as in the int8 kernels.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Literal

import torch
from torch import nn

from minarch.errors import QuantError
from minarch.quant.weights import LAYERS

Calibration = Literal["minmax", "percentile"]
CALIBRATIONS = ("minmax", "percentile")
# A calibration tensor is cut into batches of this many samples, to bound memory.
CALIBRATION_BATCH = 256
# Percentile calibration reads percentiles from a histogram of this many bins over min..max.
HISTOGRAM_BINS = 1 << 14


class ActivationQuantizer(nn.Module):
    """Fake-quantizes a tensor to ``bits`` on the affine grid covering [low, high] ∪ {0}."""

    def __init__(self, bits: int, low: float, high: float) -> None:
        super().__init__()
        self.levels = 2**bits - 1
        low, high = min(low, 0.0), max(high, 0.0)
        scale = max((high - low) / self.levels, torch.finfo(torch.float32).tiny)
        zero = min(max(round(-low / scale), 0), self.levels)
        self.register_buffer("scale", torch.tensor([scale], dtype=torch.float32))
        self.register_buffer("zero_point", torch.tensor([zero], dtype=torch.int32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.fake_quantize_per_tensor_affine(x, self.scale, self.zero_point, 0, self.levels)

    def extra_repr(self) -> str:
        return f"levels={self.levels}, scale={float(self.scale):.4g}, zero={int(self.zero_point)}"


def _quantize_input(layer: nn.Module, args: tuple) -> tuple:
    # A module-level function, not a closure, so the model still deep-copies and pickles.
    return (layer.input_quantizer(args[0]), *args[1:])


def _batches(calibration: torch.Tensor | Iterable[torch.Tensor]) -> Iterator[torch.Tensor]:
    if isinstance(calibration, torch.Tensor):
        if calibration.dim() < 2 or len(calibration) == 0:
            raise QuantError(
                f"calibration tensor has shape {tuple(calibration.shape)}: expected a "
                "non-empty batch of model inputs (N, *input_shape)"
            )
        yield from calibration.split(CALIBRATION_BATCH)
        return
    for batch in calibration:
        if not isinstance(batch, torch.Tensor):
            raise QuantError(f"calibration batches must be tensors, got {type(batch).__name__}")
        yield batch


def _observe(
    model: nn.Module, layers: list[nn.Module], batches: list[torch.Tensor], record: Callable
) -> None:
    """Run ``batches`` through ``model`` in eval mode, calling ``record(layer, input)``."""
    handles = [
        layer.register_forward_pre_hook(lambda m, args: record(m, args[0])) for layer in layers
    ]
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    was_training = model.training
    model.eval()
    try:
        for batch in batches:
            model(batch.to(device))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)


def _percentile_range(
    histogram: torch.Tensor, low: float, high: float, percentile: float
) -> tuple[float, float]:
    """Bin edges enclosing the (100 - p)-th to p-th percentiles: never clips more than asked."""
    cumulative = histogram.double().cumsum(0)
    cumulative /= cumulative[-1].clamp_min(1)
    width = (high - low) / len(histogram)
    q = torch.tensor([1 - percentile / 100, percentile / 100], dtype=cumulative.dtype)
    first, last = torch.searchsorted(cumulative, q.to(cumulative.device)).tolist()
    return low + width * min(first, len(histogram) - 1), low + width * min(last + 1, len(histogram))


@torch.no_grad()
def quantize_activations(
    model: nn.Module,
    bits: int,
    calibration: torch.Tensor | Iterable[torch.Tensor],
    *,
    method: Calibration = "minmax",
    percentile: float = 99.99,
) -> nn.Module:
    """Calibrate and attach an input quantizer to every Conv/Linear of ``model``, in place.

    Ranges are observed with activations in float (weights as the caller left
    them). ``minmax`` takes the extremes over all calibration data;
    ``percentile`` a second pass reads the (100 - p)-th and p-th percentiles of
    all of it from a histogram over that min..max, so a rare outlier does not
    stretch the grid.
    """
    if method not in CALIBRATIONS:
        raise QuantError(f"unknown calibration {method!r}: expected 'minmax' or 'percentile'")
    layers = [m for m in model.modules() if isinstance(m, LAYERS)]
    if not layers:
        raise QuantError("cannot quantize activations: the model has no Conv or Linear layer")
    if any(hasattr(layer, "input_quantizer") for layer in layers):
        raise QuantError(
            "the model's activations are already quantized; start from the float model"
        )
    batches = list(_batches(calibration))
    if not batches:
        raise QuantError("calibration data is empty: pass at least one batch of model inputs")
    ranges: dict[nn.Module, tuple[float, float]] = {}

    def extremes(layer: nn.Module, x: torch.Tensor) -> None:
        low, high = float(x.min()), float(x.max())
        if layer in ranges:
            low, high = min(low, ranges[layer][0]), max(high, ranges[layer][1])
        ranges[layer] = (low, high)

    _observe(model, layers, batches, extremes)
    idle = [name for name, m in model.named_modules() if m in layers and m not in ranges]
    if idle:
        raise QuantError(f"cannot calibrate {', '.join(idle)}: never ran on the calibration data")
    if method == "percentile":
        histograms: dict[nn.Module, torch.Tensor] = {}

        def count(layer: nn.Module, x: torch.Tensor) -> None:
            low, high = ranges[layer]
            counts = torch.histc(x.float(), bins=HISTOGRAM_BINS, min=low, max=high)
            histograms[layer] = histograms.get(layer, 0) + counts

        _observe(model, layers, batches, count)
        ranges = {
            layer: _percentile_range(histograms[layer], low, high, percentile)
            if high > low
            else (low, high)
            for layer, (low, high) in ranges.items()
        }
    for layer, (low, high) in ranges.items():
        layer.input_quantizer = ActivationQuantizer(bits, low, high).to(layer.weight.device)
        layer.register_forward_pre_hook(_quantize_input)
    return model
