"""Plain convolutional network: the config schema (the model is in ``models/cnn.py``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from minarch.models.registry import SIZE, SIZE_WHEN_SWEPT, Example, register


def _odd(kernel: int) -> int:
    if kernel % 2 == 0:
        raise ValueError("kernel must be odd so that 'same' padding is symmetric")
    return kernel


class CNNConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    depth: int = Field(
        default=2, ge=1, description="conv blocks", json_schema_extra=SIZE_WHEN_SWEPT
    )
    channels: int = Field(
        gt=0, description="channels of the first conv block", json_schema_extra=SIZE
    )
    kernel: Annotated[int, Field(ge=1), AfterValidator(_odd)] = 3
    pooling: Literal["max", "avg", "none"] = "max"
    batch_norm: bool = True
    stride: int = Field(default=1, ge=1, description="stride of every conv (2 halves the side)")
    pool_every: int = Field(default=1, ge=1, description="pool after every k-th block")
    head: Literal["gap", "flatten"] = Field(
        default="gap", description="global average pooling, or all features flattened"
    )
    growth: float = Field(
        default=1.0, gt=0, description="block i has round(channels x growth^i) channels"
    )

    def block_channels(self) -> list[int]:
        """Each block's channels: the first has ``channels``, each next ``growth`` times more."""
        return [max(1, round(self.channels * self.growth**i)) for i in range(self.depth)]


def describe(config: CNNConfig) -> str:
    label = f"cnn d{config.depth} c{config.channels}"
    if config.kernel != 3:
        label += f" k{config.kernel}"
    if config.growth != 1:
        label += f" x{config.growth:g}"
    if config.stride != 1:
        label += f" s{config.stride}"
    if config.pooling != "max":
        label += f" pool-{config.pooling}"
    if config.pool_every != 1:
        label += f" pool-every-{config.pool_every}"
    if config.head != "gap":
        label += f" {config.head}"
    return label if config.batch_norm else f"{label} no-bn"


register(
    "cnn",
    CNNConfig,
    "minarch.models.cnn:build",
    describe,
    example=Example(CNNConfig(depth=3, channels=16), (3, 8, 8)),
)
