"""ImageNet ResNet-50 (He et al. 2016, table 1) with bottleneck blocks.

The adaptive average pool lets it run on any input size; 224×224 is the
reference (25.6 M parameters, about 4.1e9 MACs at 1000 classes).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from minarch.models.blocks import Bottleneck, conv_bn, scaled, stage
from minarch.models.registry import register
from minarch.models.shapes import spatial_dims

_BLOCKS = (3, 4, 6, 3)
_WIDTHS = (64, 128, 256, 512)


class ResNet50Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    width_multiplier: float = Field(default=1.0, gt=0, description="scales every channel count")


class ResNet50(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, width_multiplier: float) -> None:
        super().__init__()
        channels = scaled(64, width_multiplier)
        self.stem = nn.Sequential(
            conv_bn(in_channels, channels, 7, stride=2, activation=nn.ReLU),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        stages = []
        for index, (blocks, width) in enumerate(zip(_BLOCKS, _WIDTHS, strict=True)):
            stride = 1 if index == 0 else 2
            layer, channels = stage(
                Bottleneck, channels, scaled(width, width_multiplier), blocks, stride
            )
            stages.append(layer)
        self.stages = nn.Sequential(*stages)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x):
        return self.classifier(self.pool(self.stages(self.stem(x))))


def build(config: ResNet50Config, input_shape: tuple[int, ...], num_classes: int) -> ResNet50:
    spatial_dims("resnet50", input_shape, (2,))
    return ResNet50(input_shape[0], num_classes, config.width_multiplier)


def describe(config: ResNet50Config) -> str:
    return f"resnet50 ×{config.width_multiplier:g}"


register("resnet50", ResNet50Config, build, describe)
