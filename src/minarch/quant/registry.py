"""Post-training quantizers, by the ``quantizer`` name of a quantization setting.

Each quantizer's file registers how it applies its setting (spec/settings.py),
so a new one is that file and its registration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from minarch.errors import QuantError
from minarch.registry import Registry
from minarch.spec.settings import QuantSetting

# n -> the first n training inputs, normalized: what activation ranges are calibrated on.
Calibrate = Callable[[int], torch.Tensor]


@dataclass(frozen=True)
class Quantizer:
    """``apply(model, setting, input_shape, calibrate)``: a quantized copy of ``model``.

    ``deployed``: the result is a real model to run on the CPU, so its size and
    latency are measured; otherwise it simulates the format in float.
    """

    apply: Callable[[nn.Module, QuantSetting, tuple[int, ...], Calibrate], nn.Module]
    deployed: bool


QUANTIZERS: Registry[Quantizer] = Registry("quantizer", QuantError)
