"""Residual building blocks shared by the ResNet families (He et al. 2016).

Shortcuts are identities unless the shape changes; there the paper's
section 4.2 offers option A (subsample and zero-pad the new channels, no
parameters) and option B (a 1×1 conv + BN projection). ReLUs are functional
and additions are out of place, so the blocks run under ``torch.func``
transforms.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch.nn.functional as F
from torch import nn


def conv_bn(
    in_channels: int,
    out_channels: int,
    kernel: int,
    stride: int = 1,
    groups: int = 1,
    activation: type[nn.Module] | None = None,
) -> nn.Sequential:
    """Bias-free conv with 'same' padding, then BN (which makes a conv bias redundant)."""
    layers: list[nn.Module] = [
        nn.Conv2d(
            in_channels, out_channels, kernel, stride, kernel // 2, groups=groups, bias=False
        ),
        nn.BatchNorm2d(out_channels),
    ]
    if activation is not None:
        layers.append(activation())
    return nn.Sequential(*layers)


class ZeroPadShortcut(nn.Module):
    """Option A as the thesis's code (akamaster's CIFAR ResNets) has it: every
    ``stride``-th pixel, with the new channels as zeros split evenly before and after."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ValueError("a zero-padding shortcut cannot reduce the channel count")
        extra = out_channels - in_channels
        self.stride = stride
        self.padding = (extra // 2, extra - extra // 2)

    def forward(self, x):
        return F.pad(x[:, :, :: self.stride, :: self.stride], (0, 0, 0, 0, *self.padding))


# How a block builds its shortcut from (in channels, out channels, stride).
Shortcut = Callable[[int, int, int], nn.Module]


def zero_padding(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """Option A: the identity, subsampled and zero-padded where the shape changes."""
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return ZeroPadShortcut(in_channels, out_channels, stride)


def projection(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """Option B: the identity, or a 1×1 conv + BN where the shape changes."""
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return conv_bn(in_channels, out_channels, 1, stride)


class BasicBlock(nn.Module):
    """Two 3×3 convs; ``width`` is the output channel count."""

    expansion = 1

    def __init__(self, in_channels: int, width: int, stride: int, shortcut: Shortcut) -> None:
        super().__init__()
        self.conv1 = conv_bn(in_channels, width, 3, stride, activation=nn.ReLU)
        self.conv2 = conv_bn(width, width, 3)
        self.shortcut = shortcut(in_channels, width, stride)

    def forward(self, x):
        return F.relu(self.conv2(self.conv1(x)) + self.shortcut(x))


class Bottleneck(nn.Module):
    """1×1 reduce, 3×3 (carrying the stride, as in torchvision's "ResNet v1.5"), 1×1 expand ×4."""

    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int, shortcut: Shortcut) -> None:
        super().__init__()
        out_channels = width * self.expansion
        self.conv1 = conv_bn(in_channels, width, 1, activation=nn.ReLU)
        self.conv2 = conv_bn(width, width, 3, stride, activation=nn.ReLU)
        self.conv3 = conv_bn(width, out_channels, 1)
        self.shortcut = shortcut(in_channels, out_channels, stride)

    def forward(self, x):
        return F.relu(self.conv3(self.conv2(self.conv1(x))) + self.shortcut(x))


def stage(
    block: type[BasicBlock | Bottleneck],
    in_channels: int,
    width: int,
    blocks: int,
    stride: int,
    shortcut: Shortcut,
) -> tuple[nn.Sequential, int]:
    """``blocks`` residual blocks, the first one carrying the stride; returns the out channels."""
    layers = []
    for index in range(blocks):
        layers.append(block(in_channels, width, stride if index == 0 else 1, shortcut))
        in_channels = width * block.expansion
    return nn.Sequential(*layers), in_channels


class ResNet(nn.Module):
    """Stem, stages of residual blocks, global average pool, linear classifier.

    Shared by the CIFAR ResNets and ResNet-50, which differ only in stem,
    block type, stage plan and shortcut option; ``plan`` holds (width, blocks,
    stride) per stage.
    """

    def __init__(
        self,
        stem: nn.Module,
        block: type[BasicBlock | Bottleneck],
        channels: int,
        plan: Sequence[tuple[int, int, int]],
        num_classes: int,
        shortcut: Shortcut,
    ) -> None:
        super().__init__()
        self.stem = stem
        stages = []
        for width, blocks, stride in plan:
            layer, channels = stage(block, channels, width, blocks, stride, shortcut)
            stages.append(layer)
        self.stages = nn.Sequential(*stages)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x):
        return self.classifier(self.pool(self.stages(self.stem(x))))
