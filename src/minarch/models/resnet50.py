"""ImageNet ResNet-50 (He et al. 2016, table 1) with bottleneck blocks.

The adaptive average pool lets it run on any input size; 224×224 is the
reference (25.6 M parameters, about 4.1e9 MACs at 1000 classes).
"""

from __future__ import annotations

from torch import nn

from minarch.models.blocks import Bottleneck, ResNet, conv_bn, projection
from minarch.models.families.resnet50 import ResNet50Config
from minarch.models.shapes import spatial_dims


def build(config: ResNet50Config, input_shape: tuple[int, ...], num_classes: int) -> ResNet:
    spatial_dims("resnet50", input_shape, (2,))
    channels = config.stem_channels
    stem = nn.Sequential(
        conv_bn(input_shape[0], channels, 7, stride=2, activation=nn.ReLU),
        nn.MaxPool2d(3, stride=2, padding=1),
    )
    return ResNet(stem, Bottleneck, channels, config.stages(), num_classes, projection)
