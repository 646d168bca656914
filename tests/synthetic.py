"""Small synthetic datasets in minarch's in-memory format, for trainer tests."""

from __future__ import annotations

import torch
from torch import Tensor

from minarch.data import Dataset, DatasetInfo


def class_patterns(
    shape: tuple[int, ...], classes: int, n_train: int, n_val: int, *, noise: float
) -> Dataset:
    """uint8 images around one random pattern per class: learnable in a few steps."""
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(classes, *shape, generator=g)

    def sample(n: int) -> tuple[Tensor, Tensor]:
        y = torch.randint(classes, (n,), generator=g)
        x = 128 + 40 * centres[y] + noise * torch.randn(n, *shape, generator=g)
        return x.clamp(0, 255).to(torch.uint8), y

    (train_x, train_y), (val_x, val_y) = sample(n_train), sample(n_val)
    mean, std = train_x.float().mean(dim=(0, 2, 3)), train_x.float().std(dim=(0, 2, 3))
    info = DatasetInfo("patterns", shape, classes, "synthetic class patterns")
    return Dataset(info, train_x, train_y, val_x, val_y, mean, std)
