"""CIFAR-10 re-encoded as JPEG (quality 75), read straight from its ``.tar.gz``.

The archive holds ``cifar10-jpeg/{train,test}/<class>/<image>.jpg``; the sorted
class folders are CIFAR-10's own label order. It is lossy and has no official
download, so it is its own dataset and reports call it "CIFAR-10 (JPEG q75)".
Decoding its 60,000 images takes seconds, so the decoded uint8 arrays are cached
once under the archive's SHA-256 (checked on every load: it costs about 30 ms).
"""

from __future__ import annotations

import io
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import numpy as np

from minarch.data.registry import DatasetInfo, LoadRequest, Source, register
from minarch.errors import DataError

if TYPE_CHECKING:
    from minarch.data.dataset import Dataset

ARCHIVE = "cifar10-jpeg.tar.gz"
# The class folders in sorted order, which is CIFAR-10's label order 0-9.
CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
_TOP = "cifar10-jpeg"
_SPLITS = ("train", "test")
_KEYS = ("train_x", "train_y", "test_x", "test_y")
_LAYOUT = f"expected {_TOP}/train|test/<class>/<image>.jpg"


@register(
    DatasetInfo(
        "cifar10-jpeg",
        (3, 32, 32),
        10,
        "CIFAR-10's 60,000 images re-encoded as JPEG quality 75 (lossy, not the official "
        "files; Krizhevsky 2009)",
        title="CIFAR-10 (JPEG q75)",
        difficulty=65,  # the same images as cifar10, re-encoded
        train_size=50_000,
    ),
    source=Source(
        "cifar10-jpeg",
        {ARCHIVE: "a12931f6b07786d16d44c172a83496b855d3df40e19c03072530f5749ea5ea79"},
        mirrors=(),
    ),
)
def load_cifar10_jpeg(req: LoadRequest) -> Dataset:
    from minarch.data.cache import find, read_arrays, store_arrays
    from minarch.data.dataset import build_dataset
    from minarch.data.files import fetch

    fetch(req.info.name, req.root, req.source, download=req.download)
    sha256 = req.source.files[ARCHIVE]
    name = f"cifar10-jpeg-{sha256[:16]}.npz"
    cached = find(name, req.root)
    if cached is not None:
        arrays = read_arrays(cached, _KEYS)
    else:
        arrays = decode_archive(req.root / ARCHIVE)
        store_arrays(name, req.root, arrays)
    return build_dataset(req.info, *(arrays[k] for k in _KEYS))


def decode_archive(archive: Path) -> dict[str, np.ndarray]:
    """Every image as (N, 3, 32, 32) uint8 with int64 labels, per split in (class, file) order."""
    from minarch.data.files import open_archive

    found: dict[str, list[tuple[str, str, np.ndarray]]] = {split: [] for split in _SPLITS}
    with open_archive(archive) as members:
        for path, contents in members:
            if contents is None:
                continue
            split, label = _place(archive, path)
            with contents:
                found[split].append((label, path.name, _decode(archive, path, contents.read())))
    arrays = {}
    for split in _SPLITS:
        classes = sorted({label for label, _, _ in found[split]})
        if tuple(classes) != CLASSES:
            raise DataError(
                f"{archive}: {split}/ has class folders {', '.join(classes) or 'none'}, "
                f"expected {', '.join(CLASSES)}"
            )
        images = sorted(found[split], key=lambda item: item[:2])
        arrays[f"{split}_x"] = np.stack([image for *_, image in images]).transpose(0, 3, 1, 2)
        arrays[f"{split}_y"] = np.array([CLASSES.index(c) for c, *_ in images], dtype=np.int64)
    return {k: np.ascontiguousarray(arrays[k]) for k in _KEYS}


def _place(archive: Path, path: PurePosixPath) -> tuple[str, str]:
    """The split and class folder of an image member."""
    parts = path.parts
    if len(parts) != 4 or parts[0] != _TOP or parts[1] not in _SPLITS:
        raise DataError(f"{archive}: unexpected member {str(path)!r}; {_LAYOUT}")
    return parts[1], parts[2]


def _decode(archive: Path, path: PurePosixPath, data: bytes) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data), formats=["JPEG"]) as image:
            if image.size != (32, 32):
                raise ValueError(f"{image.size[0]}x{image.size[1]} pixels, expected 32x32")
            return np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"{archive}: cannot decode {path} as a JPEG ({exc})") from None
