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
    """Conv blocks (conv, batch norm, ReLU, pooling by 2), then a linear classifier over
    the globally averaged or the flattened features.

    A block pools only while the spatial side is at least 4, so tiny inputs still fit.
    """

    def __init__(
        self, in_channels: int, spatial: tuple[int, ...], num_classes: int, config: CNNConfig
    ) -> None:
        super().__init__()
        ndim = len(spatial)
        shape = list(spatial)
        layers: list[nn.Module] = []
        channels = in_channels
        for block, out_channels in enumerate(config.block_channels(), start=1):
            conv = _CONV[ndim](
                channels,
                out_channels,
                config.kernel,
                stride=config.stride,
                padding=config.kernel // 2,
                bias=not config.batch_norm,
            )
            shape = [(side - 1) // config.stride + 1 for side in shape]
            layers.append(conv)
            if config.batch_norm:
                layers.append(_BATCH_NORM[ndim](out_channels))
            layers.append(nn.ReLU())
            pools = config.pooling != "none" and block % config.pool_every == 0
            if pools and min(shape) >= 4:
                layers.append(_POOL[config.pooling, ndim](2))
                shape = [side // 2 for side in shape]
            channels = out_channels
        if config.head == "gap":
            layers.append(_GLOBAL_POOL[ndim](1))
        else:
            channels *= math.prod(shape)
        layers.append(nn.Flatten())
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x))


def build(config: CNNConfig, input_shape: tuple[int, ...], num_classes: int) -> CNN:
    spatial_dims("cnn", input_shape, (1, 2))
    return CNN(input_shape[0], input_shape[1:], num_classes, config)
