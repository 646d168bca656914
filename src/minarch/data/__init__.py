"""Datasets as in-memory tensors: registry, official-format loaders, checksums,
downloads and batched on-device augmentation.

The catalog (``registry.py``, the dataset modules in ``datasets/``) imports no
torch; tensors, loading and augmentation do, and are imported on first use.
"""

from minarch.data.registry import (
    DatasetInfo,
    dataset_info,
    dataset_names,
    needs_folder,
)
from minarch.lazy import on_first_use

__getattr__ = on_first_use(
    __name__,
    {
        "Dataset": "dataset",
        "FileCheck": "files",
        "check_dataset": "load",
        "default_data_dir": "load",
        "load_dataset": "load",
        "split_dataset": "dataset",
    },
)

__all__ = [
    "Dataset",
    "DatasetInfo",
    "FileCheck",
    "check_dataset",
    "dataset_info",
    "dataset_names",
    "default_data_dir",
    "load_dataset",
    "needs_folder",
    "split_dataset",
]
