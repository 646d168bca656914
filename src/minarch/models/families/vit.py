"""Vision transformer: the config schema (the model is in ``models/vit.py``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from minarch.models.registry import SIZE, SIZE_WHEN_SWEPT, Example, register


class ViTConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    patch_size: int = Field(default=4, gt=0, description="patch side (or length for 1-D)")
    dim: int = Field(gt=0, description="token embedding width", json_schema_extra=SIZE)
    depth: int = Field(
        default=2, ge=1, description="encoder blocks", json_schema_extra=SIZE_WHEN_SWEPT
    )
    heads: int = Field(default=2, gt=0, description="attention heads; must divide dim")
    mlp_ratio: float = Field(default=2.0, gt=0, description="MLP hidden width / dim")


def describe(config: ViTConfig) -> str:
    label = f"vit p{config.patch_size} dim{config.dim} d{config.depth} h{config.heads}"
    return label if config.mlp_ratio == 2.0 else f"{label} mlp×{config.mlp_ratio:g}"


register(
    "vit",
    ViTConfig,
    "minarch.models.vit:build",
    describe,
    example=Example(ViTConfig(dim=16, depth=1), (3, 8, 8)),
)
