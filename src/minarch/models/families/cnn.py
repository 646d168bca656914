"""Plain convolutional network: the config schema (the model is in ``models/cnn.py``)."""

from __future__ import annotations

import math
from typing import Annotated, Literal, NamedTuple

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from minarch.models.analytic import Counts, conv, free, linear, norm, total
from minarch.models.registry import SIZE, SIZE_WHEN_SWEPT, Example, register
from minarch.models.shapes import spatial_dims, strided


def _odd(kernel: int) -> int:
    if kernel % 2 == 0:
        raise ValueError("kernel must be odd so that 'same' padding is symmetric")
    return kernel


class Block(NamedTuple):
    """One conv block of a CNN: its channels, the sides its conv outputs, whether it pools
    them by 2, and the sides it outputs."""

    channels: int
    conv_sides: tuple[int, ...]
    pools: bool
    sides: tuple[int, ...]


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

    def blocks(self, sides: tuple[int, ...]) -> list[Block]:
        """The conv blocks on an input of spatial ``sides``, for the model and its count.

        A block pools only while the spatial side is at least 4, so tiny inputs still fit.
        """
        blocks = []
        for index, channels in enumerate(self.block_channels(), start=1):
            conv_sides = strided(sides, self.stride)
            pools = self.pooling != "none" and index % self.pool_every == 0
            pools = pools and min(conv_sides) >= 4
            sides = tuple(side // 2 for side in conv_sides) if pools else conv_sides
            blocks.append(Block(channels, conv_sides, pools, sides))
        return blocks


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


def count(config: CNNConfig, input_shape: tuple[int, ...], num_classes: int) -> Counts:
    """Each block's conv, batch norm, ReLU and pooling; then the head and the classifier."""
    spatial_dims("cnn", input_shape, (1, 2))
    parts = []
    channels = input_shape[0]
    blocks = config.blocks(input_shape[1:])
    for block in blocks:
        elements = block.channels * math.prod(block.conv_sides)
        parts.append(
            conv(
                channels,
                block.channels,
                config.kernel,
                block.conv_sides,
                bias=not config.batch_norm,
            )
        )
        if config.batch_norm:
            parts.append(norm(block.channels, elements))
        parts.append(free(elements))  # ReLU
        if block.pools:
            parts.append(free(block.channels * math.prod(block.sides)))
        channels = block.channels
    if config.head == "gap":
        parts.append(free(channels))  # the global pool; the flatten follows
    else:
        channels *= math.prod(blocks[-1].sides)
    parts += [free(channels), linear(channels, num_classes)]
    return total(parts)


register(
    "cnn",
    CNNConfig,
    "minarch.models.cnn:build",
    describe,
    example=Example(CNNConfig(depth=3, channels=16), (3, 8, 8)),
    count=count,
)
