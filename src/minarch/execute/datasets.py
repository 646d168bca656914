"""Each dataset split loaded once per process, on the training device."""

from __future__ import annotations

from pathlib import Path

import torch

from minarch.data import Dataset, load_dataset, split_dataset
from minarch.spec import DatasetSpec


class DatasetCache:
    def __init__(self, data_dir: Path, device: torch.device, *, download: bool = True):
        self.data_dir, self.device, self.download = data_dir, device, download
        self._loaded: dict[DatasetSpec, Dataset] = {}

    def get(self, spec: DatasetSpec) -> Dataset:
        if spec not in self._loaded:
            full = load_dataset(
                spec.name,
                self.data_dir,
                download=self.download,
                path=Path(spec.path) if spec.path else None,
                image_size=spec.image_size,
            )
            split = split_dataset(
                full, train_fraction=spec.train_fraction, validation=spec.validation
            )
            self._loaded[spec] = split.to(self.device)
        return self._loaded[spec]

    def add(self, spec: DatasetSpec, data: Dataset) -> None:
        """A split loaded elsewhere (a Ray task gets the driver's through the object store)."""
        self._loaded[spec] = data.to(self.device)
