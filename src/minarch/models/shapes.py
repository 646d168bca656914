"""Shapes shared by the families' models and their counts: input checks, channel
scaling, the sides a strided conv leaves. Torch-free, so a family counts without it."""

from __future__ import annotations

from minarch.errors import ModelError

_LAYOUTS = {1: "1-D signals (C, L)", 2: "images (C, H, W)"}


def spatial_dims(family: str, input_shape: tuple[int, ...], allowed: tuple[int, ...]) -> int:
    """Number of spatial dimensions (1 or 2) of a (C, ...) input, if the family supports it."""
    ndim = len(input_shape) - 1
    if ndim not in allowed:
        expected = " or ".join(_LAYOUTS[n] for n in allowed)
        raise ModelError(
            f"{family}: input shape {input_shape} is not supported; expected {expected}"
        )
    return ndim


def format_size(spatial: tuple[int, ...]) -> str:
    """``28×28`` for images, ``length-40`` for signals, as used in error messages."""
    return "×".join(map(str, spatial)) if len(spatial) > 1 else f"length-{spatial[0]}"


def scaled(channels: int, width_multiplier: float) -> int:
    return max(1, round(channels * width_multiplier))


def strided(sides: tuple[int, ...], stride: int) -> tuple[int, ...]:
    """The sides after a conv (or pool) of odd kernel k, padding k // 2 and ``stride``."""
    return tuple((side - 1) // stride + 1 for side in sides)
