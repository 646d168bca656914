"""Files derived from the data to skip slow work: decoded images, generated data,
unpacked archives.

Each lives beside the data it comes from; where that folder cannot be written
(a shared read-only data folder) it goes to the user's cache folder instead.
Each is written under a temporary name and renamed into place, so a file or
folder under its final name is always complete.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import platformdirs

from minarch.errors import DataError
from minarch.scratch import remove_stale, tag


def user_cache_dir() -> Path:
    """Where derived files go when the data's own folder is read-only."""
    return Path(platformdirs.user_cache_dir("minarch")) / "derived"


def find(name: str, beside: Path) -> Path | None:
    """``name`` beside the data, else in the user's cache folder; None if in neither."""
    for parent in (beside, user_cache_dir()):
        if (parent / name).exists():
            return parent / name
    return None


def store(name: str, beside: Path, write: Callable[[Path], None], *, folder: bool = False) -> Path:
    """Make ``name`` by ``write(temporary path)`` and rename it into place; return where.

    The first of ``beside`` and the user's cache folder that takes a new file
    is used. ``write`` fills a file (``folder=False``) or an empty folder.
    """
    for parent in (beside, user_cache_dir()):
        try:
            parent.mkdir(parents=True, exist_ok=True)
            remove_stale(parent)  # what a killed first decode left
            if folder:
                tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{name}{tag()}"))
            else:
                fd, tmp_name = tempfile.mkstemp(
                    dir=parent, prefix=f".{name}{tag()}", suffix=".part"
                )
                os.close(fd)
                tmp = Path(tmp_name)
        except OSError:
            continue
        final = parent / name
        try:
            write(tmp)
            tmp.chmod(0o755 if folder else 0o644)  # temporary names are private; caches are not
            if not (folder and final.is_dir()):  # a concurrent load may have made it first
                os.replace(tmp, final)
            return final
        except OSError as exc:
            raise DataError(
                f"cannot write {final} ({exc}); free some space or set MINARCH_DATA_DIR "
                "to another folder"
            ) from None
        finally:
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)
    raise DataError(
        f"cannot write {name}: neither {beside} nor {user_cache_dir()} is writable; "
        "set MINARCH_DATA_DIR to a writable folder"
    )


def read_arrays(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The named arrays of an ``.npz`` cache (no pickles: a cache file runs no code)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in keys}
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: unreadable cache ({exc}); delete it to rebuild it") from None


def store_arrays(name: str, beside: Path, arrays: Mapping[str, np.ndarray]) -> Path:
    """Cache ``arrays`` as an uncompressed ``.npz`` (loads in well under a second)."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    return store(name, beside, write)
