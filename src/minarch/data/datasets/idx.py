"""MNIST-style datasets: gzipped IDX files (LeCun et al.'s format)."""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from minarch.data.registry import DatasetInfo, LoadRequest, Source, register
from minarch.errors import DataError

if TYPE_CHECKING:
    from minarch.data.dataset import Dataset

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
_UBYTE = 0x08


def read_idx(path: Path, magic: int) -> np.ndarray:
    """Read one gzipped IDX file of unsigned bytes whose magic must be ``magic``."""
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(
            f"{path}: not a complete gzip file ({exc}); delete it to re-download"
        ) from None
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise DataError(f"{path}: IDX magic number {found}, expected {magic}; not this IDX file")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if len(raw) != header + math.prod(shape):
        raise DataError(
            f"{path}: {len(raw) - header} data bytes for shape {shape}; the file is truncated"
        )
    return np.frombuffer(raw, np.uint8, offset=header).reshape(shape)


def _split(root: Path, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(root / f"{prefix}-images-idx3-ubyte.gz", IMAGES_MAGIC)
    labels = read_idx(root / f"{prefix}-labels-idx1-ubyte.gz", LABELS_MAGIC)
    if len(images) != len(labels):
        raise DataError(f"{root}: {prefix} has {len(images)} images but {len(labels)} labels")
    return images[:, None].copy(), labels.astype(np.int64)


def load_idx(req: LoadRequest) -> Dataset:
    from minarch.data.dataset import build_dataset
    from minarch.data.files import fetch

    fetch(req.info.name, req.root, req.source, download=req.download)
    return build_dataset(req.info, *_split(req.root, "train"), *_split(req.root, "t10k"))


_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def _source(subdir: str, md5s: tuple[str, str, str, str], mirrors: tuple[str, ...]) -> Source:
    return Source(subdir, dict(zip(_FILES, md5s, strict=True)), mirrors)


register(
    DatasetInfo(
        "mnist",
        (1, 28, 28),
        10,
        "Handwritten digits 0-9, 28x28 (LeCun et al., Proc. IEEE 1998; yann.lecun.com/exdb/mnist)",
        title="MNIST",
        difficulty=30,
        train_size=60_000,
    ),
    source=_source(
        "mnist",
        (
            "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "d53e105ee54ea40749a09fcbcd1e9432",
            "9fb629c4189551a2d022fa330f9573f3",
            "ec29112dd5afa0611ce80d1b7f02629c",
        ),
        (
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
    ),
)(load_idx)

register(
    DatasetInfo(
        "fashion-mnist",
        (1, 28, 28),
        10,
        "Zalando article images, 28x28, 10 classes (Xiao et al., arXiv:1708.07747, 2017)",
        title="Fashion-MNIST",
        difficulty=50,
        train_size=60_000,
    ),
    source=_source(
        "fashion-mnist",
        (
            "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "25c81989df183df01b3e8a0aad5dffbe",
            "bef4ecab320f06d8554ea6380940ec79",
            "bb300cfdad3c16e7a12a480ee83cd310",
        ),
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    ),
)(load_idx)

register(
    DatasetInfo(
        "kmnist",
        (1, 28, 28),
        10,
        "Kuzushiji-MNIST, cursive Japanese characters, 28x28 (Clanuwat et al., arXiv:1812.01718)",
        title="Kuzushiji-MNIST",
        difficulty=40,
        train_size=60_000,
    ),
    source=_source(
        "kmnist",
        (
            "bdb82020997e1d708af4cf47b453dcf7",
            "e144d726b3acfaa3e44228e80efcd344",
            "5c965bf0a639b31b8f53240b1b52f4d7",
            "7320c461ea6c1c855c0b718fb2a4b134",
        ),
        ("https://codh.rois.ac.jp/kmnist/dataset/kmnist/",),
    ),
)(load_idx)
