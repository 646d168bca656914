"""Vision transformer: the config schema (the model is in ``models/vit.py``)."""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field

from minarch.errors import ModelError
from minarch.models.analytic import Counts, attention, free, linear, norm, parameter
from minarch.models.registry import SIZE, SIZE_WHEN_SWEPT, Example, register
from minarch.models.shapes import format_size, spatial_dims


class ViTConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    patch_size: int = Field(default=4, gt=0, description="patch side (or length for 1-D)")
    dim: int = Field(gt=0, description="token embedding width", json_schema_extra=SIZE)
    depth: int = Field(
        default=2, ge=1, description="encoder blocks", json_schema_extra=SIZE_WHEN_SWEPT
    )
    heads: int = Field(default=2, gt=0, description="attention heads; must divide dim")
    mlp_ratio: float = Field(default=2.0, gt=0, description="MLP hidden width / dim")

    @property
    def hidden(self) -> int:
        """The width of each encoder block's MLP."""
        return max(1, round(self.dim * self.mlp_ratio))

    def grid(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Patches per spatial side of a (C, ...) input, which the config must fit."""
        spatial_dims("vit", input_shape, (1, 2))
        if self.dim % self.heads:
            raise ModelError(f"vit.heads: dim {self.dim} is not divisible by {self.heads} heads")
        spatial = input_shape[1:]
        if any(side % self.patch_size for side in spatial):
            raise ModelError(
                f"vit.patch_size: {format_size(spatial)} input is not divisible by "
                f"patch size {self.patch_size}"
            )
        return tuple(side // self.patch_size for side in spatial)


def describe(config: ViTConfig) -> str:
    label = f"vit p{config.patch_size} dim{config.dim} d{config.depth} h{config.heads}"
    return label if config.mlp_ratio == 2.0 else f"{label} mlp×{config.mlp_ratio:g}"


def count(config: ViTConfig, input_shape: tuple[int, ...], num_classes: int) -> Counts:
    """Patch embedding, class token and positions; the encoder blocks over every token;
    the final norm, and the head on the class token alone."""
    grid = config.grid(input_shape)
    patches, dim, hidden = math.prod(grid), config.dim, config.hidden
    tokens = patches + 1
    embed = linear(input_shape[0] * config.patch_size ** len(grid), dim, patches)
    block = (
        norm(dim, tokens * dim)
        + linear(dim, 3 * dim, tokens)
        + attention(tokens, dim)
        + linear(dim, dim, tokens)
        + norm(dim, tokens * dim)
        + linear(dim, hidden, tokens)
        + free(tokens * hidden)  # GELU
        + linear(hidden, dim, tokens)
    )
    return (
        embed
        + parameter(dim)
        + parameter(tokens * dim)
        + block * config.depth
        + norm(dim, tokens * dim)
        + linear(dim, num_classes)
    )


register(
    "vit",
    ViTConfig,
    "minarch.models.vit:build",
    describe,
    example=Example(ViTConfig(dim=16, depth=1), (3, 8, 8)),
    count=count,
)
