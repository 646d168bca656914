"""He initialisation of every parameter and buffer, drawn from one generator.

Models are built on the meta device, so anything this module does not write
would be uninitialised memory: a module type without a rule is a bug and fails
loudly rather than training from garbage.
"""

from __future__ import annotations

import abc
import math

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd


class OwnParameters(abc.ABC):
    """Mixin for modules holding parameters outside standard layers (e.g. a class token)."""

    @abc.abstractmethod
    def init_own_parameters(self, generator: torch.Generator | None) -> None:
        """Write every parameter and buffer registered directly on this module."""


def _he_normal(weight: torch.Tensor, fan: int, generator: torch.Generator | None) -> None:
    nn.init.normal_(weight, 0.0, math.sqrt(2.0 / fan), generator=generator)


def _init_module(module: nn.Module, generator: torch.Generator | None) -> None:
    if isinstance(module, _ConvNd):
        # fan_out as in He et al.'s ResNets; per group, so depthwise convs get fan k*k.
        receptive = math.prod(module.kernel_size)
        _he_normal(module.weight, module.out_channels // module.groups * receptive, generator)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Linear):
        _he_normal(module.weight, module.in_features, generator)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (_BatchNorm, nn.LayerNorm)):
        if module.weight is not None:
            nn.init.ones_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
        if isinstance(module, _BatchNorm):
            module.reset_running_stats()
    elif isinstance(module, OwnParameters):
        module.init_own_parameters(generator)
    elif any(True for _ in module.parameters(recurse=False)) or any(
        True for _ in module.buffers(recurse=False)
    ):
        raise TypeError(f"no initialisation rule for {type(module).__name__}")


def initialise(model: nn.Module, generator: torch.Generator | None) -> None:
    """Initialise in place; ``generator=None`` draws from torch's global RNG."""
    with torch.no_grad():
        for module in model.modules():
            _init_module(module, generator)
