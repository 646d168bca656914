"""Multilayer perceptron, depth 0 being logistic regression: the config schema (the
model is in ``models/mlp.py``)."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from minarch.models.analytic import Counts, free, linear
from minarch.models.registry import SIZE, SIZE_WHEN_SWEPT, Example, register


class MLPConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    depth: int = Field(
        default=1, ge=0, description="hidden layers", json_schema_extra=SIZE_WHEN_SWEPT
    )
    width: int | None = Field(
        default=None,
        gt=0,
        description="units per hidden layer; none at depth 0",
        json_schema_extra=SIZE,
        validate_default=True,
    )
    activation: Literal["relu", "gelu", "tanh", "sigmoid"] = "relu"

    @field_validator("width", "activation")
    @classmethod
    def _only_with_hidden_layers(cls, value: Any, info: ValidationInfo) -> Any:
        """Depth 0 is logistic regression: a width or activation there names nothing,
        so it is dropped, and ``d0 w1`` and ``d0 w5`` are one architecture (one run id)."""
        depth = info.data.get("depth")
        if depth == 0:
            return cls.model_fields[info.field_name].default
        if value is None and depth is not None:
            raise ValueError("required when depth > 0")
        return value


def describe(config: MLPConfig) -> str:
    if config.depth == 0:
        return "mlp d0"
    label = f"mlp d{config.depth} w{config.width}"
    return label if config.activation == "relu" else f"{label} {config.activation}"


def count(config: MLPConfig, input_shape: tuple[int, ...], num_classes: int) -> Counts:
    """Flatten, then ``depth`` × (linear, activation), then the classifier."""
    features = math.prod(input_shape)
    if config.depth == 0:
        return free(features) + linear(features, num_classes)
    width = config.width
    first = linear(features, width) + free(width)
    hidden = (linear(width, width) + free(width)) * (config.depth - 1)
    return free(features) + first + hidden + linear(width, num_classes)


register(
    "mlp",
    MLPConfig,
    "minarch.models.mlp:build",
    describe,
    example=Example(MLPConfig(depth=2, width=32), (1, 8, 8)),
    count=count,
)
