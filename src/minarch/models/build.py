"""Building a registered family's model: the one place a family's builder is called."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from pydantic import BaseModel
from torch import nn

from minarch.errors import ModelError
from minarch.models.init import initialise
from minarch.models.registry import family, resolve_config


def build_model(
    name: str,
    config: BaseModel | Mapping,
    input_shape: tuple[int, ...],
    num_classes: int,
    *,
    generator: torch.Generator | None = None,
) -> nn.Module:
    """Build and initialise a model; the same generator seed gives bit-identical weights.

    Modules are created on the meta device and every parameter and buffer is
    then written by ``initialise``, so the global RNG is neither read nor
    advanced when a generator is given.
    """
    fam = family(name)
    cfg = resolve_config(fam, config)
    shape = tuple(input_shape)
    if not shape or not all(isinstance(s, int) and s > 0 for s in shape):
        raise ModelError(f"{name}: input shape must be positive integers, got {shape}")
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ModelError(f"{name}: num_classes must be a positive integer, got {num_classes}")
    build = fam.builder()
    with torch.device("meta"):
        model = build(cfg, shape, num_classes)
    model.to_empty(device="cpu")
    initialise(model, generator)
    return model
