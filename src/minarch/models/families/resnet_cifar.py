"""CIFAR ResNet, depth 6n+2: the config schema (the model is in ``models/resnet_cifar.py``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from minarch.models.registry import SIZE, Example, register


class ResNetCifarConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    depth: int = Field(ge=8, description="6n+2: 20, 32, 44, 56, 110")
    width_multiplier: float = Field(
        default=1.0, gt=0, description="scales 16/32/64 channels", json_schema_extra=SIZE
    )
    shortcut: Literal["A", "B"] = Field(
        default="A", description="A: zero-padded identity; B: 1×1 conv + BN projection"
    )

    @model_serializer(mode="wrap")
    def _identity_names_option_a(
        self, handler: SerializerFunctionWrapHandler, info: SerializationInfo
    ) -> dict[str, Any]:
        """Run ids hash the config without its defaults, and the runs stored before this
        setting were option B: so without defaults, B is left out and A is named."""
        fields = handler(self)
        if info.exclude_defaults:
            fields.pop("shortcut", None)
            if self.shortcut == "A":
                fields["shortcut"] = "A"
        return fields


def describe(config: ResNetCifarConfig) -> str:
    label = f"resnet_cifar {config.depth} ×{config.width_multiplier:g}"
    return label if config.shortcut == "A" else f"{label} shortcut-B"


register(
    "resnet_cifar",
    ResNetCifarConfig,
    "minarch.models.resnet_cifar:build",
    describe,
    example=Example(ResNetCifarConfig(depth=8, width_multiplier=0.25), (3, 8, 8)),
)
