"""Simulated (fake) weight quantization: weights are rounded to the grid and kept in float.

Uses PyTorch's fake-quantize ops, which accept any integer range (checked for
2 to 16 bits), so the same code serves QAT (qat.py) through their straight-through
gradient.
"""

from __future__ import annotations

import copy
from typing import Literal

import torch
from torch import nn

from minarch.errors import QuantError
from minarch.quant.registry import QUANTIZERS, Calibrate, Quantizer
from minarch.spec.settings import Cast

Granularity = Literal["channel", "tensor"]
MIN_BITS, MAX_BITS = 2, 16
LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
_FLOATS = {"fp16": torch.float16, "bf16": torch.bfloat16}


def check_bits(bits: object) -> int:
    if isinstance(bits, bool) or not isinstance(bits, int) or not MIN_BITS <= bits <= MAX_BITS:
        raise QuantError(
            f"unsupported bit width {bits!r}: expected an integer from {MIN_BITS} to "
            f"{MAX_BITS}, or 'fp16' / 'bf16'"
        )
    return bits


def check_granularity(granularity: object) -> Granularity:
    if granularity not in ("channel", "tensor"):
        raise QuantError(f"unknown granularity {granularity!r}: expected 'channel' or 'tensor'")
    return granularity


def scale_of(weight: torch.Tensor, bits: int, granularity: Granularity) -> torch.Tensor:
    """max|w| / (2^(b-1) - 1) per output channel (dim 0) or for the whole tensor.

    A zero range gets a tiny positive scale so all-zero channels stay zero
    instead of dividing by zero.
    """
    level = 2 ** (bits - 1) - 1
    if granularity == "channel":
        peak = weight.detach().abs().flatten(1).amax(dim=1)
    else:
        peak = weight.detach().abs().amax()
    return (peak / level).clamp_min(torch.finfo(torch.float32).tiny).float()


def fake_quantize(
    weight: torch.Tensor, bits: int, granularity: Granularity = "channel"
) -> torch.Tensor:
    """Symmetric uniform quantize-dequantize with zero point 0 and levels ±(2^(b-1) - 1)."""
    check_bits(bits)
    check_granularity(granularity)
    level = 2 ** (bits - 1) - 1
    scale = scale_of(weight, bits, granularity)
    if granularity == "channel" and weight.dim() > 1:
        zero = torch.zeros(weight.shape[0], dtype=torch.int32, device=weight.device)
        return torch.fake_quantize_per_channel_affine(weight, scale, zero, 0, -level, level)
    return torch.fake_quantize_per_tensor_affine(weight, float(scale.max()), 0, -level, level)


def quantize_weights(
    model: nn.Module, bits: int, *, granularity: Granularity = "channel"
) -> nn.Module:
    """A copy with every Conv/Linear weight fake-quantized.

    Biases stay float, as int8 kernels keep them at 32 bits.
    """
    check_bits(bits)
    check_granularity(granularity)
    quantized = copy.deepcopy(model)
    with torch.no_grad():
        for module in quantized.modules():
            if isinstance(module, LAYERS):
                module.weight.copy_(fake_quantize(module.weight, bits, granularity))
    return quantized


def cast(model: nn.Module, dtype: Literal["fp16", "bf16"] | torch.dtype) -> nn.Module:
    """A copy whose float parameters and buffers are rounded to ``dtype``, stored as float32.

    Rounding and restoring keeps evaluation in float32 (CPU kernels for fp16
    are partial and slow), so this measures the weights' precision loss only;
    activations still run in float32.
    """
    target = _FLOATS.get(dtype, dtype) if isinstance(dtype, str) else dtype
    if target not in _FLOATS.values():
        raise QuantError(f"unsupported cast {dtype!r}: expected 'fp16' or 'bf16'")
    rounded = copy.deepcopy(model)
    with torch.no_grad():
        for tensor in [*rounded.parameters(), *rounded.buffers()]:
            if tensor.is_floating_point():
                tensor.copy_(tensor.to(target).to(tensor.dtype))
    return rounded


def _apply(
    model: nn.Module, setting: Cast, input_shape: tuple[int, ...], calibrate: Calibrate
) -> nn.Module:
    return cast(model, setting.dtype)


QUANTIZERS.register(Cast.quantizer, Quantizer(_apply, deployed=False))
