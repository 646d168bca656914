"""ImageNet ResNet-50 (He et al. 2016, table 1) with bottleneck blocks.

The adaptive average pool lets it run on any input size; 224×224 is the
reference (25.6 M parameters, about 4.1e9 MACs at 1000 classes).
"""

from __future__ import annotations

from torch import nn

from minarch.models.blocks import Bottleneck, ResNet, conv_bn, projection, scaled
from minarch.models.families.resnet50 import ResNet50Config
from minarch.models.shapes import spatial_dims

_BLOCKS = (3, 4, 6, 3)
_WIDTHS = (64, 128, 256, 512)


def build(config: ResNet50Config, input_shape: tuple[int, ...], num_classes: int) -> ResNet:
    spatial_dims("resnet50", input_shape, (2,))
    multiplier = config.width_multiplier
    channels = scaled(64, multiplier)
    stem = nn.Sequential(
        conv_bn(input_shape[0], channels, 7, stride=2, activation=nn.ReLU),
        nn.MaxPool2d(3, stride=2, padding=1),
    )
    plan = [
        (scaled(width, multiplier), blocks, 1 if index == 0 else 2)
        for index, (blocks, width) in enumerate(zip(_BLOCKS, _WIDTHS, strict=True))
    ]
    return ResNet(stem, Bottleneck, channels, plan, num_classes, projection)
