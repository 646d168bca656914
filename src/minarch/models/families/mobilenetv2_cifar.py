"""MobileNetV2 for 32×32 inputs: the config schema (the model: ``models/mobilenetv2_cifar.py``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from minarch.models.analytic import Counts, conv_bn, free, linear, total
from minarch.models.registry import SIZE, Example, register
from minarch.models.shapes import spatial_dims, strided

# (expansion t, output channels c, repeats n, first stride s); paper table 2 with s=1 in row 2.
_SETTINGS = (
    (1, 16, 1, 1),
    (6, 24, 2, 1),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def round_channels(channels: float, divisor: int = 8) -> int:
    """Nearest multiple of ``divisor`` that loses at most 10 % of ``channels``."""
    rounded = max(divisor, int(channels + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * channels else rounded


class MobileNetV2Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    width_multiplier: float = Field(
        default=1.0, gt=0, description="scales every channel count", json_schema_extra=SIZE
    )

    @property
    def stem_channels(self) -> int:
        return round_channels(32 * self.width_multiplier)

    @property
    def last_channels(self) -> int:
        """The paper keeps the last conv at 1280 channels for multipliers below one."""
        return round_channels(1280 * max(1.0, self.width_multiplier))

    def blocks(self) -> list[tuple[int, int, int, int]]:
        """(in channels, out channels, stride, expansion) of each inverted residual block."""
        blocks = []
        channels = self.stem_channels
        for expansion, out, repeats, stride in _SETTINGS:
            out_channels = round_channels(out * self.width_multiplier)
            for index in range(repeats):
                blocks.append((channels, out_channels, stride if index == 0 else 1, expansion))
                channels = out_channels
        return blocks


def describe(config: MobileNetV2Config) -> str:
    return f"mobilenetv2_cifar ×{config.width_multiplier:g}"


def count(config: MobileNetV2Config, input_shape: tuple[int, ...], num_classes: int) -> Counts:
    """The stem; each block's expansion, depthwise and projection convs; the last conv,
    the pool and the classifier."""
    spatial_dims("mobilenetv2_cifar", input_shape, (2,))
    sides = input_shape[1:]
    parts = [conv_bn(input_shape[0], config.stem_channels, 3, sides, activation=True)]
    for in_channels, out_channels, stride, expansion in config.blocks():
        hidden = in_channels * expansion
        if expansion != 1:
            parts.append(conv_bn(in_channels, hidden, 1, sides, activation=True))
        sides = strided(sides, stride)
        parts += [
            conv_bn(hidden, hidden, 3, sides, groups=hidden, activation=True),
            conv_bn(hidden, out_channels, 1, sides),
        ]
    last = config.last_channels
    parts += [conv_bn(out_channels, last, 1, sides, activation=True)]
    parts += [free(last), free(last), linear(last, num_classes)]  # pool, flatten, classifier
    return total(parts)


register(
    "mobilenetv2_cifar",
    MobileNetV2Config,
    "minarch.models.mobilenetv2_cifar:build",
    describe,
    example=Example(MobileNetV2Config(width_multiplier=0.25), (3, 8, 8)),
    count=count,
)
