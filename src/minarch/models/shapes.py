"""Input-shape checks shared by the families."""

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
