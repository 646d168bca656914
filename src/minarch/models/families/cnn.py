"""Plain convolutional network: the config schema (the model is in ``models/cnn.py``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from minarch.models.registry import Example, register


def _odd(kernel: int) -> int:
    if kernel % 2 == 0:
        raise ValueError("kernel must be odd so that 'same' padding is symmetric")
    return kernel


class CNNConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    depth: int = Field(default=2, ge=1, description="conv blocks")
    channels: int = Field(gt=0, description="channels of every conv block")
    kernel: Annotated[int, Field(ge=1), AfterValidator(_odd)] = 3
    pooling: Literal["max", "avg", "none"] = "max"
    batch_norm: bool = True


def describe(config: CNNConfig) -> str:
    label = f"cnn d{config.depth} c{config.channels}"
    if config.kernel != 3:
        label += f" k{config.kernel}"
    if config.pooling != "max":
        label += f" pool-{config.pooling}"
    return label if config.batch_norm else f"{label} no-bn"


register(
    "cnn",
    CNNConfig,
    "minarch.models.cnn:build",
    describe,
    example=Example(CNNConfig(depth=3, channels=16), (3, 8, 8)),
)
