"""Multilayer perceptron: the config schema (the model is in ``models/mlp.py``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from minarch.models.registry import Example, register


class MLPConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    depth: int = Field(default=1, ge=0, description="hidden layers")
    width: int = Field(gt=0, description="units per hidden layer")
    activation: Literal["relu", "gelu", "tanh", "sigmoid"] = "relu"


def describe(config: MLPConfig) -> str:
    label = f"mlp d{config.depth} w{config.width}"
    return label if config.activation == "relu" else f"{label} {config.activation}"


register(
    "mlp",
    MLPConfig,
    "minarch.models.mlp:build",
    describe,
    example=Example(MLPConfig(depth=2, width=32), (1, 8, 8)),
)
