"""In-memory datasets: whole splits as tensors, so batches are slices on the device."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor

from minarch.data.registry import DatasetInfo
from minarch.errors import DataError

# Statistics are summed in float64 over chunks of about this many values, so
# a large uint8 dataset is never copied whole into float64.
_STATS_CHUNK_VALUES = 1 << 22


@dataclass(frozen=True, eq=False)
class Dataset:
    """Train and validation splits, with the train split's channel statistics.

    Images stay uint8 (a quarter of the memory of float32) until ``normalize``
    turns a batch into float32; ``mean`` and ``std`` are in the raw units.
    """

    info: DatasetInfo
    train_x: Tensor
    train_y: Tensor
    val_x: Tensor
    val_y: Tensor
    mean: Tensor
    std: Tensor

    def normalize(self, x: Tensor) -> Tensor:
        shape = (1, -1) + (1,) * (x.dim() - 2)
        mean = self.mean.to(x.device).view(shape)
        std = self.std.to(x.device).view(shape)
        return (x.float() - mean) / std

    def to(self, device: torch.device | str) -> Dataset:
        return replace(
            self,
            train_x=self.train_x.to(device),
            train_y=self.train_y.to(device),
            val_x=self.val_x.to(device),
            val_y=self.val_y.to(device),
            mean=self.mean.to(device),
            std=self.std.to(device),
        )


def build_dataset(
    info: DatasetInfo,
    train_x: Tensor | np.ndarray,
    train_y: Tensor | np.ndarray,
    val_x: Tensor | np.ndarray,
    val_y: Tensor | np.ndarray,
) -> Dataset:
    """Check the splits against ``info`` and attach the train statistics.

    NumPy arrays are taken without a copy, so a loader module need not import torch.
    """
    train_x, train_y, val_x, val_y = map(torch.as_tensor, (train_x, train_y, val_x, val_y))
    for split, x, y in (("train", train_x, train_y), ("validation", val_x, val_y)):
        if tuple(x.shape[1:]) != info.input_shape:
            raise DataError(
                f"{info.name}: {split} inputs have shape {tuple(x.shape[1:])}, "
                f"expected {info.input_shape}; the files are not the official ones"
            )
        if len(x) != len(y):
            raise DataError(f"{info.name}: {split} has {len(x)} inputs but {len(y)} labels")
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= info.num_classes):
            raise DataError(
                f"{info.name}: {split} labels outside 0..{info.num_classes - 1}; "
                "the label file does not belong to this dataset"
            )
    if len(train_x) == 0:
        raise DataError(f"{info.name}: the train split is empty")
    mean, std = channel_stats(train_x)
    return Dataset(info, train_x, train_y.long(), val_x, val_y.long(), mean, std)


def channel_stats(x: Tensor) -> tuple[Tensor, Tensor]:
    """Per-channel mean and std (std 1 for a constant channel, to keep division safe)."""
    channels = x.shape[1]
    dims = [0, *range(2, x.dim())]
    total = torch.zeros(channels, dtype=torch.float64, device=x.device)
    squares = torch.zeros_like(total)
    per_sample = max(1, x[0].numel())
    for chunk in x.split(max(1, _STATS_CHUNK_VALUES // per_sample)):
        values = chunk.double()
        total += values.sum(dims)
        squares += values.square().sum(dims)
    count = x.numel() / channels
    mean = total / count
    std = (squares / count - mean.square()).clamp_min(0).sqrt()
    std = torch.where(std > 0, std, torch.ones_like(std))
    return mean.float(), std.float()


def split_dataset(
    ds: Dataset, *, train_fraction: float = 1.0, validation: str | float = "test", seed: int = 0
) -> Dataset:
    """Subsample train and choose the validation set, reproducibly from ``seed``.

    With a float ``validation`` the held-out part is drawn first, so runs that
    differ only in ``train_fraction`` are scored on the same validation set.
    Both draws are stratified by class.
    """
    if isinstance(train_fraction, bool) or not 0 < train_fraction <= 1:
        raise DataError(f"train_fraction must be in (0, 1], got {train_fraction!r}")
    generator = torch.Generator().manual_seed(seed)
    train_x, train_y, val_x, val_y = ds.train_x, ds.train_y, ds.val_x, ds.val_y
    if isinstance(validation, str):
        if validation != "test":
            raise DataError(
                f'validation must be "test" or a fraction in (0, 1), got {validation!r}'
            )
    elif isinstance(validation, bool) or not 0 < validation < 1:
        raise DataError(f'validation must be "test" or a fraction in (0, 1), got {validation!r}')
    else:
        held = _stratified_mask(train_y, validation, generator)
        if held.all():
            raise DataError(f"{ds.info.name}: validation={validation} leaves no training data")
        val_x, val_y = _take(train_x, train_y, held)
        train_x, train_y = _take(train_x, train_y, ~held)
    if train_fraction < 1:
        train_x, train_y = _take(
            train_x, train_y, _stratified_mask(train_y, train_fraction, generator)
        )
    mean, std = channel_stats(train_x)
    return replace(
        ds, train_x=train_x, train_y=train_y, val_x=val_x, val_y=val_y, mean=mean, std=std
    )


def _stratified_mask(y: Tensor, fraction: float, generator: torch.Generator) -> Tensor:
    """A random ``fraction`` of each class (at least one sample), as a CPU bool mask."""
    y = y.cpu()
    perm = torch.randperm(len(y), generator=generator)
    order = perm[torch.argsort(y[perm], stable=True)]  # grouped by class, shuffled within
    labels = y[order]
    counts = torch.bincount(labels)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(len(y)) - starts[labels]
    keep = torch.minimum((counts * fraction).round().clamp_min(1), counts)
    mask = torch.zeros(len(y), dtype=torch.bool)
    mask[order[rank < keep[labels]]] = True
    return mask


def _take(x: Tensor, y: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    index = mask.nonzero().squeeze(1)
    return x[index.to(x.device)], y[index.to(y.device)]
