"""CIFAR-10 and CIFAR-100: the official pickled Python batches (Krizhevsky, 2009)."""

from __future__ import annotations

import pickle
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from minarch.data.registry import DatasetInfo, LoadRequest, Source, register
from minarch.errors import DataError

if TYPE_CHECKING:
    from minarch.data.dataset import Dataset

_MIRRORS = ("https://www.cs.toronto.edu/~kriz/",)
_CITATION = "Krizhevsky, Learning Multiple Layers of Features from Tiny Images, 2009"


def read_batches(paths: list[Path], label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate batches into (N, 3, 32, 32) uint8 images and int64 labels.

    Unpickling is safe here only because ``fetch`` verified each file's MD5.
    """
    images, labels = [], []
    for path in paths:
        try:
            with open(path, "rb") as f:
                batch = pickle.load(f, encoding="bytes")
            data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            labels.append(np.asarray(batch[label_key], dtype=np.int64))
        except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError) as exc:
            raise DataError(
                f"{path}: not an official CIFAR batch ({exc!r}); delete it to re-download"
            ) from None
        images.append(data)
    return np.concatenate(images), np.concatenate(labels)


def _load(
    req: LoadRequest, *, train: tuple[str, ...], test: tuple[str, ...], label_key: bytes
) -> Dataset:
    from minarch.data.dataset import build_dataset
    from minarch.data.files import fetch

    fetch(req.info.name, req.root, req.source, download=req.download)
    folder = req.root / req.source.extracted_dir
    return build_dataset(
        req.info,
        *read_batches([folder / name for name in train], label_key),
        *read_batches([folder / name for name in test], label_key),
    )


_CIFAR10_BATCHES = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}

register(
    DatasetInfo(
        "cifar10",
        (3, 32, 32),
        10,
        f"32x32 colour images, 10 classes ({_CITATION})",
        title="CIFAR-10",
        difficulty=60,
        train_size=50_000,
    ),
    source=Source(
        "cifar-10",
        {"cifar-10-python.tar.gz": "c58f30108f718f92721af3b95e74349a"},
        _MIRRORS,
        {f"cifar-10-batches-py/{name}": md5 for name, md5 in _CIFAR10_BATCHES.items()},
    ),
)(
    partial(
        _load,
        train=tuple(f"data_batch_{i}" for i in range(1, 6)),
        test=("test_batch",),
        label_key=b"labels",
    )
)

register(
    DatasetInfo(
        "cifar100",
        (3, 32, 32),
        100,
        f"32x32 colour images, 100 fine classes ({_CITATION})",
        title="CIFAR-100",
        difficulty=70,
        train_size=50_000,
    ),
    source=Source(
        "cifar-100",
        {"cifar-100-python.tar.gz": "eb9058c3a382ffc7106e4002c42a8d85"},
        _MIRRORS,
        {
            "cifar-100-python/train": "16019d7e3df5f24257cddd939b257f8d",
            "cifar-100-python/test": "f0ef6b0ae62326f3e7ffdfab6717acfc",
            "cifar-100-python/meta": "7973b15100ade9c7d40fb424638fde48",
        },
    ),
)(partial(_load, train=("train",), test=("test",), label_key=b"fine_labels"))
