"""CIFAR ResNet (He et al. 2016, section 4.2): depth 6n+2, three stages of n basic blocks."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from minarch.errors import ModelError
from minarch.models.blocks import BasicBlock, ResNet, conv_bn, scaled
from minarch.models.registry import Example, register
from minarch.models.shapes import spatial_dims


class ResNetCifarConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    depth: int = Field(ge=8, description="6n+2: 20, 32, 44, 56, 110")
    width_multiplier: float = Field(default=1.0, gt=0, description="scales 16/32/64 channels")


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
    return ResNet(stem, BasicBlock, widths[0], plan, num_classes)


def describe(config: ResNetCifarConfig) -> str:
    return f"resnet_cifar {config.depth} ×{config.width_multiplier:g}"


register(
    "resnet_cifar",
    ResNetCifarConfig,
    build,
    describe,
    example=Example(ResNetCifarConfig(depth=8, width_multiplier=0.25), (3, 8, 8)),
)
