"""CIFAR ResNet (He et al. 2016, section 4.2): depth 6n+2, three stages of n basic blocks."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from minarch.errors import ModelError
from minarch.models.blocks import BasicBlock, conv_bn, scaled, stage
from minarch.models.registry import register
from minarch.models.shapes import spatial_dims


class ResNetCifarConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    depth: int = Field(ge=8, description="6n+2: 20, 32, 44, 56, 110")
    width_multiplier: float = Field(default=1.0, gt=0, description="scales 16/32/64 channels")


class ResNetCifar(nn.Module):
    def __init__(
        self, in_channels: int, num_classes: int, blocks_per_stage: int, width_multiplier: float
    ) -> None:
        super().__init__()
        widths = [scaled(c, width_multiplier) for c in (16, 32, 64)]
        self.stem = conv_bn(in_channels, widths[0], 3, activation=nn.ReLU)
        channels = widths[0]
        stages = []
        for width, stride in zip(widths, (1, 2, 2), strict=True):
            layer, channels = stage(BasicBlock, channels, width, blocks_per_stage, stride)
            stages.append(layer)
        self.stages = nn.Sequential(*stages)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x):
        return self.classifier(self.pool(self.stages(self.stem(x))))


def build(config: ResNetCifarConfig, input_shape: tuple[int, ...], num_classes: int) -> ResNetCifar:
    spatial_dims("resnet_cifar", input_shape, (2,))
    if (config.depth - 2) % 6:
        raise ModelError(
            f"resnet_cifar.depth: {config.depth} is not 6n+2; use e.g. 20, 32, 44, 56 or 110"
        )
    return ResNetCifar(
        input_shape[0], num_classes, (config.depth - 2) // 6, config.width_multiplier
    )


def describe(config: ResNetCifarConfig) -> str:
    return f"resnet_cifar {config.depth} ×{config.width_multiplier:g}"


register("resnet_cifar", ResNetCifarConfig, build, describe)
