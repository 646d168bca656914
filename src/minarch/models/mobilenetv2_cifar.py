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
    def __init__(self, in_channels: int, num_classes: int, config: MobileNetV2Config) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            conv_bn(in_channels, config.stem_channels, 3, activation=nn.ReLU6)
        ]
        for block_in, out_channels, stride, expansion in config.blocks():
            layers.append(InvertedResidual(block_in, out_channels, stride, expansion))
        last = config.last_channels
        layers += [conv_bn(out_channels, last, 1, activation=nn.ReLU6)]
        self.features = nn.Sequential(*layers)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(last, num_classes)

    def forward(self, x):
        return self.classifier(self.pool(self.features(x)))


def build(config: MobileNetV2Config, input_shape: tuple[int, ...], num_classes: int):
    spatial_dims("mobilenetv2_cifar", input_shape, (2,))
    return MobileNetV2Cifar(input_shape[0], num_classes, config)
