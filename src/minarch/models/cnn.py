"""Plain convolutional network: conv blocks, then global average pooling or a flatten."""

from __future__ import annotations

import math

from torch import nn

from minarch.models.families.cnn import CNNConfig
from minarch.models.shapes import spatial_dims

_CONV = {1: nn.Conv1d, 2: nn.Conv2d}
_BATCH_NORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d}
_POOL = {("max", 1): nn.MaxPool1d, ("max", 2): nn.MaxPool2d}
_POOL |= {("avg", 1): nn.AvgPool1d, ("avg", 2): nn.AvgPool2d}
_GLOBAL_POOL = {1: nn.AdaptiveAvgPool1d, 2: nn.AdaptiveAvgPool2d}


class CNN(nn.Module):
    """Conv blocks (conv, batch norm, ReLU, pooling by 2; ``CNNConfig.blocks``), then a
    linear classifier over the globally averaged or the flattened features."""

    def __init__(
        self, in_channels: int, spatial: tuple[int, ...], num_classes: int, config: CNNConfig
    ) -> None:
        super().__init__()
        ndim = len(spatial)
        layers: list[nn.Module] = []
        channels = in_channels
        blocks = config.blocks(spatial)
        for block in blocks:
            conv = _CONV[ndim](
                channels,
                block.channels,
                config.kernel,
                stride=config.stride,
                padding=config.kernel // 2,
                bias=not config.batch_norm,
            )
            layers.append(conv)
            if config.batch_norm:
                layers.append(_BATCH_NORM[ndim](block.channels))
            layers.append(nn.ReLU())
            if block.pools:
                layers.append(_POOL[config.pooling, ndim](2))
            channels = block.channels
        if config.head == "gap":
            layers.append(_GLOBAL_POOL[ndim](1))
        else:
            channels *= math.prod(blocks[-1].sides)
        layers.append(nn.Flatten())
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x))


def build(config: CNNConfig, input_shape: tuple[int, ...], num_classes: int) -> CNN:
    spatial_dims("cnn", input_shape, (1, 2))
    return CNN(input_shape[0], input_shape[1:], num_classes, config)
