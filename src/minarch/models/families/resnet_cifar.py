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

from minarch.errors import ModelError
from minarch.models.analytic import Counts, conv_bn, resnet
from minarch.models.registry import SIZE, Example, register
from minarch.models.shapes import scaled, spatial_dims


class ResNetCifarConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    depth: int = Field(ge=8, description="6n+2: 20, 32, 44, 56, 110")
    width_multiplier: float = Field(
        default=1.0, gt=0, description="scales 16/32/64 channels", json_schema_extra=SIZE
    )
    shortcut: Literal["A", "B"] = Field(
        default="A", description="A: zero-padded identity; B: 1×1 conv + BN projection"
    )

    def stages(self) -> list[tuple[int, int, int]]:
        """(width, blocks, stride) of each of the three stages."""
        if (self.depth - 2) % 6:
            raise ModelError(
                f"resnet_cifar.depth: {self.depth} is not 6n+2; use e.g. 20, 32, 44, 56 or 110"
            )
        blocks = (self.depth - 2) // 6
        widths = [scaled(c, self.width_multiplier) for c in (16, 32, 64)]
        return [(width, blocks, stride) for width, stride in zip(widths, (1, 2, 2), strict=True)]

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


def count(config: ResNetCifarConfig, input_shape: tuple[int, ...], num_classes: int) -> Counts:
    """A 3×3 stem at full resolution, then the stages of basic blocks."""
    spatial_dims("resnet_cifar", input_shape, (2,))
    plan = config.stages()
    channels, sides = plan[0][0], input_shape[1:]
    stem = conv_bn(input_shape[0], channels, 3, sides, activation=True)
    projection = config.shortcut == "B"
    return resnet(stem, channels, sides, plan, num_classes, bottleneck=False, projection=projection)


register(
    "resnet_cifar",
    ResNetCifarConfig,
    "minarch.models.resnet_cifar:build",
    describe,
    example=Example(ResNetCifarConfig(depth=8, width_multiplier=0.25), (3, 8, 8)),
    count=count,
)
