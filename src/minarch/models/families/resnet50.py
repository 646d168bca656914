"""ImageNet ResNet-50: the config schema (the model is in ``models/resnet50.py``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from minarch.models.registry import Example, register


class ResNet50Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    width_multiplier: float = Field(default=1.0, gt=0, description="scales every channel count")


def describe(config: ResNet50Config) -> str:
    return f"resnet50 ×{config.width_multiplier:g}"


register(
    "resnet50",
    ResNet50Config,
    "minarch.models.resnet50:build",
    describe,
    example=Example(ResNet50Config(width_multiplier=0.0625), (3, 8, 8)),
)
