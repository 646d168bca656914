"""A model's counts by arithmetic, layer by layer, without building it or importing torch.

What a family's ``count`` adds up (``models/families/``), so planning a study
neither builds its models nor imports torch. Each layer is counted as torch
counts the built one: trainable parameters as ``count_parameters``, forward
FLOPs as ``count_flops`` (torch's FlopCounterMode: 2 × the multiply-adds of
convolutions, matrix products and attention; biases, norms, activations,
pooling and additions are free), parameter tensors as the planner bounds them,
and activations as ``train.engine.activations_per_sample`` (the elements every
leaf module outputs). ``tests/test_counts.py`` holds every family to exact
agreement.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import astuple, dataclass

from minarch.models.shapes import strided


@dataclass(frozen=True)
class Counts:
    """Sizes of a model for one sample; they add up over layers and multiply over repeats."""

    parameters: int = 0
    flops: int = 0
    tensors: int = 0  # parameter tensors, which the planner bounds (a million-layer stack)
    activations: int = 0  # elements output by leaf modules, which the memory check sizes

    def __add__(self, other: Counts) -> Counts:
        return Counts(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))

    def __mul__(self, times: int) -> Counts:
        return Counts(*(value * times for value in astuple(self)))


def total(parts: list[Counts]) -> Counts:
    return sum(parts, Counts())


def linear(in_features: int, out_features: int, rows: int = 1) -> Counts:
    """``nn.Linear`` (with bias) applied to ``rows`` vectors, such as a sequence's tokens."""
    weight = in_features * out_features
    return Counts(weight + out_features, 2 * rows * weight, 2, rows * out_features)


def conv(
    in_channels: int,
    out_channels: int,
    kernel: int,
    sides: tuple[int, ...],
    *,
    groups: int = 1,
    bias: bool = True,
) -> Counts:
    """A 1-d or 2-d convolution whose output has spatial ``sides``."""
    weight = out_channels * (in_channels // groups) * kernel ** len(sides)
    positions = math.prod(sides)
    return Counts(
        weight + out_channels * bias, 2 * weight * positions, 1 + bias, out_channels * positions
    )


def norm(channels: int, elements: int) -> Counts:
    """Batch or layer norm with its scale and shift, over an output of ``elements``."""
    return Counts(2 * channels, 0, 2, elements)


def free(elements: int) -> Counts:
    """A leaf module without parameters or counted FLOPs: activation, pooling, flatten,
    identity, zero-padding shortcut."""
    return Counts(activations=elements)


def parameter(elements: int) -> Counts:
    """A parameter a module holds itself, such as a class token."""
    return Counts(elements, 0, 1, 0)


def attention(tokens: int, dim: int) -> Counts:
    """Scaled dot-product attention over all heads: queries × keys and weights × values.

    Not a leaf module, so it outputs no activations of its own.
    """
    return Counts(flops=2 * 2 * tokens * tokens * dim)


def conv_bn(
    in_channels: int,
    out_channels: int,
    kernel: int,
    sides: tuple[int, ...],
    *,
    groups: int = 1,
    activation: bool = False,
) -> Counts:
    """``models.blocks.conv_bn``: a bias-free conv, batch norm, and an activation if asked."""
    elements = out_channels * math.prod(sides)
    layers = conv(in_channels, out_channels, kernel, sides, groups=groups, bias=False)
    layers += norm(out_channels, elements)
    return layers + free(elements) if activation else layers


def resnet(
    stem: Counts,
    channels: int,
    sides: tuple[int, ...],
    plan: Sequence[tuple[int, int, int]],
    num_classes: int,
    *,
    bottleneck: bool,
    projection: bool,
) -> Counts:
    """``models.blocks.ResNet`` whose stem left ``channels`` × ``sides``; ``plan`` holds
    (width, blocks, stride) per stage. A stage's blocks after its first are alike."""
    parts = [stem]
    expansion = 4 if bottleneck else 1
    for width, blocks, stride in plan:
        first, sides = _residual_block(channels, width, stride, sides, bottleneck, projection)
        channels = width * expansion
        rest, _ = _residual_block(channels, width, 1, sides, bottleneck, projection)
        parts += [first, rest * (blocks - 1)]
    parts += [free(channels), free(channels), linear(channels, num_classes)]  # pool, flatten
    return total(parts)


def _residual_block(
    in_channels: int,
    width: int,
    stride: int,
    sides: tuple[int, ...],
    bottleneck: bool,
    projection: bool,
) -> tuple[Counts, tuple[int, ...]]:
    """``models.blocks.BasicBlock`` or ``Bottleneck`` with its shortcut, and its output sides."""
    out_sides = strided(sides, stride)
    if bottleneck:
        out_channels = 4 * width
        layers = conv_bn(in_channels, width, 1, sides, activation=True)
        layers += conv_bn(width, width, 3, out_sides, activation=True)
        layers += conv_bn(width, out_channels, 1, out_sides)
    else:
        out_channels = width
        layers = conv_bn(in_channels, width, 3, out_sides, activation=True)
        layers += conv_bn(width, width, 3, out_sides)
    if stride == 1 and in_channels == out_channels:
        shortcut = free(in_channels * math.prod(sides))  # identity
    elif projection:
        shortcut = conv_bn(in_channels, out_channels, 1, out_sides)
    else:
        shortcut = free(out_channels * math.prod(out_sides))  # subsampled and zero-padded
    return layers + shortcut, out_sides
