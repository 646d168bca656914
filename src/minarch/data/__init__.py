"""Datasets as in-memory tensors: registry, official-format loaders, checksums,
downloads and batched on-device augmentation.

Importing the loader modules registers their datasets.
"""

from minarch.data import cifar, cifar_jpeg, generated, idx, imagefolder  # noqa: F401  (registration)
from minarch.data.augment import augment
from minarch.data.dataset import Dataset, split_dataset
from minarch.data.files import FileCheck
from minarch.data.load import check_dataset, default_data_dir, load_dataset
from minarch.data.registry import (
    DatasetInfo,
    dataset_info,
    dataset_names,
    needs_folder,
)

__all__ = [
    "Dataset",
    "DatasetInfo",
    "FileCheck",
    "augment",
    "check_dataset",
    "dataset_info",
    "dataset_names",
    "default_data_dir",
    "load_dataset",
    "needs_folder",
    "split_dataset",
]
