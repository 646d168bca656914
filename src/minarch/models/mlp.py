"""Multilayer perceptron on the flattened input; depth 0 is logistic regression."""

from __future__ import annotations

import math

from torch import nn

from minarch.models.families.mlp import MLPConfig

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}


class MLP(nn.Module):
    def __init__(self, in_features: int, num_classes: int, config: MLPConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        features = in_features
        for _ in range(config.depth):
            layers += [nn.Linear(features, config.width), ACTIVATIONS[config.activation]()]
            features = config.width
        layers.append(nn.Linear(features, num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x)


def build(config: MLPConfig, input_shape: tuple[int, ...], num_classes: int) -> MLP:
    return MLP(math.prod(input_shape), num_classes, config)
