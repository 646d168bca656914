"""Your own images: ``root/train/<class>/*`` and ``root/val/<class>/*`` (or ``test/``).

``root`` may also be a ``.tar``/``.tar.gz`` archive of that layout (optionally
inside one top folder): it is unpacked safely, once, into a folder named after
its SHA-256, beside it or else in the user's cache folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from minarch.data.registry import DatasetInfo, LoadRequest, register
from minarch.errors import DataError

if TYPE_CHECKING:
    from minarch.data.dataset import Dataset

DEFAULT_IMAGE_SIZE = 64
_LAYOUT = "expected root/train/<class>/<image> and root/val/<class>/<image> (or root/test/)"
_ARCHIVES = (".tar", ".tar.gz", ".tgz")


def describe_folder(path: Path, image_size: int | None) -> DatasetInfo:
    """Check the layout and count classes without decoding a single image."""
    return _describe(_image_root(path), image_size)


def _image_root(path: Path) -> Path:
    """The folder holding train/: ``path`` itself, or where its archive is unpacked."""
    from minarch.data.cache import find, store
    from minarch.data.files import file_digest, safe_extract

    if not path.is_file():
        return path
    suffix = next((s for s in _ARCHIVES if path.name.endswith(s)), None)
    if suffix is None:
        raise DataError(f"imagefolder: {path} is a file but not a {'/'.join(_ARCHIVES)} archive")
    name = f"{path.name.removesuffix(suffix)}-{file_digest(path, 'sha256')[:16]}"
    unpacked = find(name, path.parent) or store(
        name, path.parent, lambda tmp: safe_extract(path, tmp), folder=True
    )
    tops = [p for p in unpacked.iterdir() if p.is_dir()]
    return tops[0] if len(tops) == 1 and not (unpacked / "train").is_dir() else unpacked


def _describe(root: Path, image_size: int | None) -> DatasetInfo:
    size = DEFAULT_IMAGE_SIZE if image_size is None else image_size
    if size < 1:
        raise DataError(f"imagefolder: image_size must be a positive integer, got {size}")
    if not (root / "train").is_dir():
        raise DataError(f"imagefolder: no train/ folder in {root}; {_LAYOUT}")
    val_dir = _val_dir(root)
    classes = _subfolders(root / "train")
    if not classes:
        raise DataError(f"imagefolder: {root / 'train'} has no class folders; {_LAYOUT}")
    unknown = sorted(set(_subfolders(val_dir)) - set(classes))
    if unknown:
        raise DataError(f"imagefolder: {val_dir} has classes not in train/: {', '.join(unknown)}")
    return DatasetInfo(
        "imagefolder",
        (3, size, size),
        len(classes),
        f"Image folder {root} ({len(classes)} classes, {size}x{size})",
        train_size=sum(len(_image_files(root / "train" / name)) for name in classes),
    )


@register(
    DatasetInfo(
        "imagefolder",
        (3, DEFAULT_IMAGE_SIZE, DEFAULT_IMAGE_SIZE),
        0,
        "Images in class folders read with Pillow; classes (0 here) and size are set when loaded",
        difficulty=1000,  # a user's own images, of unknown difficulty: after every built-in
    ),
    describe=describe_folder,
)
def load_imagefolder(req: LoadRequest) -> Dataset:
    """Classes are the train sub-folders in sorted order, so labels are stable."""
    from minarch.data.dataset import build_dataset

    if req.path is None:
        raise DataError(f"imagefolder: give the folder's path; {_LAYOUT}")
    root = _image_root(req.path)
    info = _describe(root, req.image_size)
    classes, size = _subfolders(root / "train"), info.input_shape[-1]
    train = _read_split(root / "train", classes, size, require_all=True)
    val = _read_split(_val_dir(root), classes, size, require_all=False)
    return build_dataset(info, *train, *val)


def _val_dir(root: Path) -> Path:
    val_dir = root / "val" if (root / "val").is_dir() else root / "test"
    if not val_dir.is_dir():
        raise DataError(f"imagefolder: no val/ or test/ folder in {root}; {_LAYOUT}")
    return val_dir


def _subfolders(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _image_files(class_dir: Path) -> list[Path]:
    """A class folder's images in sorted order (hidden files skipped); none if it is missing."""
    if not class_dir.is_dir():
        return []
    return sorted(p for p in class_dir.glob("*") if p.is_file() and not p.name.startswith("."))


def _read_split(
    folder: Path, classes: list[str], size: int, *, require_all: bool
) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    for label, name in enumerate(classes):
        class_dir = folder / name
        files = _image_files(class_dir)
        if require_all and not files:
            raise DataError(f"imagefolder: {class_dir} has no images; {_LAYOUT}")
        images.extend(read_image(p, size) for p in files)
        labels.extend([label] * len(files))
    if not images:
        raise DataError(f"imagefolder: {folder} has no images; {_LAYOUT}")
    return np.ascontiguousarray(np.stack(images).transpose(0, 3, 1, 2)), np.array(labels, np.int64)


def read_image(path: Path, size: int) -> np.ndarray:
    """RGB, shorter side resized to ``size``, centre-cropped square: (size, size, 3) uint8."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB")
            width, height = rgb.size
            scale = size / min(width, height)
            new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
            rgb = rgb.resize((new_w, new_h), Image.Resampling.BILINEAR)
            left, top = (new_w - size) // 2, (new_h - size) // 2
            return np.asarray(rgb.crop((left, top, left + size, top + size)), dtype=np.uint8)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(
            f"imagefolder: cannot decode {path} ({exc}); remove or replace it"
        ) from None
