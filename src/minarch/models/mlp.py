"""Multilayer perceptron on the flattened input; depth 0 is logistic regression."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from minarch.models.registry import SIZE, SIZE_WHEN_SWEPT, Example, register

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}


class MLPConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    depth: int = Field(
        default=1, ge=0, description="hidden layers", json_schema_extra=SIZE_WHEN_SWEPT
    )
    width: int = Field(gt=0, description="units per hidden layer", json_schema_extra=SIZE)
    activation: Literal["relu", "gelu", "tanh", "sigmoid"] = "relu"


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


def describe(config: MLPConfig) -> str:
    label = f"mlp d{config.depth} w{config.width}"
    return label if config.activation == "relu" else f"{label} {config.activation}"


register(
    "mlp", MLPConfig, build, describe, example=Example(MLPConfig(depth=2, width=32), (1, 8, 8))
)
