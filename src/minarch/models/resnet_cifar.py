"""CIFAR ResNet (He et al. 2016, section 4.2): depth 6n+2, three stages of n basic blocks.

Shortcuts follow option A by default, as the paper's CIFAR models and the
thesis's code do (docs/methods.md B.2): ResNet-20 has 269,722 parameters and
ResNet-56 853,018 with 10 classes. ``shortcut: B`` projects instead (272,474
and 855,770), as every CIFAR ResNet did before the setting existed.
"""

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
from torch import nn

from minarch.errors import ModelError
from minarch.models.blocks import BasicBlock, ResNet, conv_bn, projection, scaled, zero_padding
from minarch.models.registry import SIZE, Example, register
from minarch.models.shapes import spatial_dims


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


def build(config: ResNetCifarConfig, input_shape: tuple[int, ...], num_classes: int) -> ResNet:
    spatial_dims("resnet_cifar", input_shape, (2,))
    if (config.depth - 2) % 6:
        raise ModelError(
            f"resnet_cifar.depth: {config.depth} is not 6n+2; use e.g. 20, 32, 44, 56 or 110"
        )
    blocks = (config.depth - 2) // 6
    widths = [scaled(c, config.width_multiplier) for c in (16, 32, 64)]
    stem = conv_bn(input_shape[0], widths[0], 3, activation=nn.ReLU)
    plan = [(width, blocks, stride) for width, stride in zip(widths, (1, 2, 2), strict=True)]
    shortcut = zero_padding if config.shortcut == "A" else projection
    return ResNet(stem, BasicBlock, widths[0], plan, num_classes, shortcut)


def describe(config: ResNetCifarConfig) -> str:
    label = f"resnet_cifar {config.depth} ×{config.width_multiplier:g}"
    return label if config.shortcut == "A" else f"{label} shortcut-B"


register(
    "resnet_cifar",
    ResNetCifarConfig,
    build,
    describe,
    example=Example(ResNetCifarConfig(depth=8, width_multiplier=0.25), (3, 8, 8)),
)
