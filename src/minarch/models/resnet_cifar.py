"""CIFAR ResNet (He et al. 2016, section 4.2): depth 6n+2, three stages of n basic blocks.

Shortcuts follow option A by default, as the paper's CIFAR models and the
thesis's code do (docs/methods.md B.2): ResNet-20 has 269,722 parameters and
ResNet-56 853,018 with 10 classes. ``shortcut: B`` projects instead (272,474
and 855,770), as every CIFAR ResNet did before the setting existed.
"""

from __future__ import annotations

from torch import nn

from minarch.models.blocks import BasicBlock, ResNet, conv_bn, projection, zero_padding
from minarch.models.families.resnet_cifar import ResNetCifarConfig
from minarch.models.shapes import spatial_dims


def build(config: ResNetCifarConfig, input_shape: tuple[int, ...], num_classes: int) -> ResNet:
    spatial_dims("resnet_cifar", input_shape, (2,))
    plan = config.stages()
    channels = plan[0][0]
    stem = conv_bn(input_shape[0], channels, 3, activation=nn.ReLU)
    shortcut = zero_padding if config.shortcut == "A" else projection
    return ResNet(stem, BasicBlock, channels, plan, num_classes, shortcut)
