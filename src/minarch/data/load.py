"""The package's entry points: where data lives, checking it and loading it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import platformdirs

from minarch.data.files import FileCheck, check_files
from minarch.data.registry import SOURCES, LoadRequest, get_entry
from minarch.errors import DataError

if TYPE_CHECKING:
    from minarch.data.dataset import Dataset

DATA_DIR_ENV = "MINARCH_DATA_DIR"


def default_data_dir() -> Path:
    """``$MINARCH_DATA_DIR``, else the user's cache folder, so downloads are shared."""
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_cache_dir("minarch")) / "datasets"


def check_dataset(name: str, data_dir: Path) -> list[FileCheck]:
    """Presence and digest of each official file of ``name``; [] when nothing is read from disk."""
    get_entry(name)
    source = SOURCES.get(name)
    return check_files(Path(data_dir) / source.subdir, source) if source else []


def load_dataset(
    name: str,
    data_dir: Path,
    *,
    download: bool = True,
    path: Path | None = None,
    image_size: int | None = None,
) -> Dataset:
    """Load both official splits of ``name`` into CPU tensors, verifying every file."""
    entry = get_entry(name)
    if entry.takes_path and path is None:
        raise DataError(f"dataset {name!r} needs a path to its folder")
    if not entry.takes_path and (path is not None or image_size is not None):
        raise DataError(f"dataset {name!r} has a fixed location and size; drop path/image_size")
    source = SOURCES.get(name)
    root = Path(data_dir) / (source.subdir if source else name)
    request = LoadRequest(
        entry.info, root, source, download, None if path is None else Path(path), image_size
    )
    return entry.loader(request)
