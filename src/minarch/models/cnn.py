"""Plain convolutional network: conv blocks, global average pooling, linear classifier."""

from __future__ import annotations

from torch import nn

from minarch.models.families.cnn import CNNConfig
from minarch.models.shapes import spatial_dims

_CONV = {1: nn.Conv1d, 2: nn.Conv2d}
_BATCH_NORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d}
_POOL = {("max", 1): nn.MaxPool1d, ("max", 2): nn.MaxPool2d}
_POOL |= {("avg", 1): nn.AvgPool1d, ("avg", 2): nn.AvgPool2d}
_GLOBAL_POOL = {1: nn.AdaptiveAvgPool1d, 2: nn.AdaptiveAvgPool2d}


class CNN(nn.Module):
    """Pools by 2 after a block while the spatial side is at least 4, so tiny inputs still fit."""

    def __init__(
        self, in_channels: int, spatial: tuple[int, ...], num_classes: int, config: CNNConfig
    ) -> None:
        super().__init__()
        ndim = len(spatial)
        side = min(spatial)
        layers: list[nn.Module] = []
        channels = in_channels
        for _ in range(config.depth):
            conv = _CONV[ndim](
                channels,
                config.channels,
                config.kernel,
                padding=config.kernel // 2,
                bias=not config.batch_norm,
            )
            layers.append(conv)
            if config.batch_norm:
                layers.append(_BATCH_NORM[ndim](config.channels))
            layers.append(nn.ReLU())
            if config.pooling != "none" and side >= 4:
                layers.append(_POOL[config.pooling, ndim](2))
                side //= 2
            channels = config.channels
        layers += [_GLOBAL_POOL[ndim](1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x))


def build(config: CNNConfig, input_shape: tuple[int, ...], num_classes: int) -> CNN:
    spatial_dims("cnn", input_shape, (1, 2))
    return CNN(input_shape[0], input_shape[1:], num_classes, config)
