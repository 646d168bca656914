"""MobileNetV2 (Sandler et al. 2018) for 32×32 inputs.

As in the thesis's CIFAR variant (docs/methods.md B.2), the first conv and the first
stride-2 bottleneck stage (24 channels) use stride 1, so a 32×32 image keeps
enough resolution; the rest follows the paper's table 2. About 2.2 M
parameters with 10 classes.
"""

from __future__ import annotations

from torch import nn

from minarch.models.blocks import conv_bn
from minarch.models.families.mobilenetv2_cifar import MobileNetV2Config
from minarch.models.shapes import spatial_dims

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


class InvertedResidual(nn.Module):
    """Expand 1×1, depthwise 3×3, linear project 1×1; residual when the shape is kept."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = in_channels * expansion
        layers = []
        if expansion != 1:
            layers.append(conv_bn(in_channels, hidden, 1, activation=nn.ReLU6))
        layers += [
            conv_bn(hidden, hidden, 3, stride, groups=hidden, activation=nn.ReLU6),
            conv_bn(hidden, out_channels, 1),
        ]
        self.layers = nn.Sequential(*layers)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x):
        out = self.layers(x)
        return out + x if self.residual else out


class MobileNetV2Cifar(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, width_multiplier: float) -> None:
        super().__init__()
        channels = round_channels(32 * width_multiplier)
        layers: list[nn.Module] = [conv_bn(in_channels, channels, 3, activation=nn.ReLU6)]
        for expansion, out, repeats, stride in _SETTINGS:
            out_channels = round_channels(out * width_multiplier)
            for index in range(repeats):
                layers.append(
                    InvertedResidual(channels, out_channels, stride if index == 0 else 1, expansion)
                )
                channels = out_channels
        # The paper keeps the last conv at 1280 channels for multipliers below one.
        last = round_channels(1280 * max(1.0, width_multiplier))
        layers += [conv_bn(channels, last, 1, activation=nn.ReLU6)]
        self.features = nn.Sequential(*layers)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(last, num_classes)

    def forward(self, x):
        return self.classifier(self.pool(self.features(x)))


def build(config: MobileNetV2Config, input_shape: tuple[int, ...], num_classes: int):
    spatial_dims("mobilenetv2_cifar", input_shape, (2,))
    return MobileNetV2Cifar(input_shape[0], num_classes, config.width_multiplier)
