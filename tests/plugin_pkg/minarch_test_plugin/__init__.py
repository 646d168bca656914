"""A model family and a dataset from outside minarch, registered when imported.

``plugin_mlp``: one hidden layer of ``hidden`` units. ``plugin-blobs``: four
Gaussian blobs in 16 dimensions (as 1×4×4 inputs), generated from a fixed seed.
"""

from __future__ import annotations

import math

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from minarch.data.dataset import Dataset, build_dataset
from minarch.data.registry import DatasetInfo, LoadRequest
from minarch.data.registry import register as register_dataset
from minarch.models.registry import Example
from minarch.models.registry import register as register_family

SHAPE = (1, 4, 4)
CLASSES = 4


class PluginMLPConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    hidden: int = Field(gt=0, description="units of the hidden layer")


def build(config: PluginMLPConfig, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(math.prod(input_shape), config.hidden),
        nn.ReLU(),
        nn.Linear(config.hidden, num_classes),
    )


register_family(
    "plugin_mlp",
    PluginMLPConfig,
    build,
    lambda config: f"plugin_mlp h{config.hidden}",
    example=Example(PluginMLPConfig(hidden=32), SHAPE),
)


@register_dataset(
    DatasetInfo(
        "plugin-blobs",
        SHAPE,
        CLASSES,
        "four Gaussian blobs in 16 dimensions, generated (minarch's plugin test)",
        difficulty=1,
    )
)
def load_blobs(request: LoadRequest) -> Dataset:
    generator = torch.Generator().manual_seed(0)
    centres = 3 * torch.randn(CLASSES, math.prod(SHAPE), generator=generator)

    def split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.arange(n) % CLASSES
        points = centres[labels] + torch.randn(n, math.prod(SHAPE), generator=generator)
        return points.reshape(n, *SHAPE), labels

    return build_dataset(request.info, *split(400), *split(120))
