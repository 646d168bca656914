"""MobileNetV2 for 32×32 inputs: the config schema (the model: ``models/mobilenetv2_cifar.py``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from minarch.models.registry import SIZE, Example, register


class MobileNetV2Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    width_multiplier: float = Field(
        default=1.0, gt=0, description="scales every channel count", json_schema_extra=SIZE
    )


def describe(config: MobileNetV2Config) -> str:
    return f"mobilenetv2_cifar ×{config.width_multiplier:g}"


register(
    "mobilenetv2_cifar",
    MobileNetV2Config,
    "minarch.models.mobilenetv2_cifar:build",
    describe,
    example=Example(MobileNetV2Config(width_multiplier=0.25), (3, 8, 8)),
)
