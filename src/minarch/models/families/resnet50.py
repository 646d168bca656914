"""ImageNet ResNet-50: the config schema (the model is in ``models/resnet50.py``)."""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field

from minarch.models.analytic import Counts, conv_bn, free, resnet
from minarch.models.registry import Example, register
from minarch.models.shapes import scaled, spatial_dims, strided

_BLOCKS = (3, 4, 6, 3)
_WIDTHS = (64, 128, 256, 512)


class ResNet50Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    width_multiplier: float = Field(default=1.0, gt=0, description="scales every channel count")

    @property
    def stem_channels(self) -> int:
        return scaled(64, self.width_multiplier)

    def stages(self) -> list[tuple[int, int, int]]:
        """(width, blocks, stride) of each of the four stages of bottleneck blocks."""
        return [
            (scaled(width, self.width_multiplier), blocks, 1 if index == 0 else 2)
            for index, (blocks, width) in enumerate(zip(_BLOCKS, _WIDTHS, strict=True))
        ]


def describe(config: ResNet50Config) -> str:
    return f"resnet50 ×{config.width_multiplier:g}"


def count(config: ResNet50Config, input_shape: tuple[int, ...], num_classes: int) -> Counts:
    """A 7×7 stride-2 stem and a stride-2 max pool, then the stages of bottleneck blocks."""
    spatial_dims("resnet50", input_shape, (2,))
    channels = config.stem_channels
    stem_sides = strided(input_shape[1:], 2)
    sides = strided(stem_sides, 2)
    stem = conv_bn(input_shape[0], channels, 7, stem_sides, activation=True)
    stem += free(channels * math.prod(sides))  # the max pool
    return resnet(
        stem, channels, sides, config.stages(), num_classes, bottleneck=True, projection=True
    )


register(
    "resnet50",
    ResNet50Config,
    "minarch.models.resnet50:build",
    describe,
    example=Example(ResNet50Config(width_multiplier=0.0625), (3, 8, 8)),
    count=count,
)
