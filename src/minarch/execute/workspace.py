"""What every executor needs to train a study's runs: one picklable description.

Worker processes (and Ray tasks) receive a ``Workspace`` and open their own
store connection and dataset cache from it, so nothing live crosses a process.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from minarch.errors import OptionError
from minarch.scratch import remove_stale
from minarch.store import Store

ORPHAN_AFTER_SECONDS = 120.0


@dataclass(frozen=True)
class Workspace:
    db_url: str
    data_dir: Path
    artifacts: Path  # where run weights are written
    device: str  # "cpu", "cuda" or "cuda:N"
    threads: int  # intra-op threads per pack (policy.resolve_threads)
    workers: int = 1  # how many trainers share the study; recorded with each run
    engine: str = "auto"  # the pack engine (train.ENGINES); a derived start may force plain
    deterministic: bool = False  # request deterministic algorithms; recorded with each run
    memory_share: float = 1.0  # each trainer's fraction of its device (policy.memory_share)
    download: bool = True

    def on(self, device: str) -> Workspace:
        return replace(self, device=device)


def artifacts_dir(db_url: str) -> Path:
    """Weights live beside a SQLite file; otherwise in $MINARCH_ARTIFACTS or ./minarch-artifacts.

    The folder is absolute, so what a store records never depends on the
    folder a command runs in.
    """
    if os.environ.get("MINARCH_ARTIFACTS"):
        return Path(os.environ["MINARCH_ARTIFACTS"]).resolve()
    if db_url.startswith("sqlite:///") and db_url != "sqlite:///:memory:":
        return Path(db_url.removeprefix("sqlite:///")).resolve().parent / "minarch-artifacts"
    return Path("minarch-artifacts").resolve()


def weights_dir(artifacts: Path, store: Store) -> Path:
    """The store's own folder under ``artifacts``: stores never share a weights file."""
    return artifacts / store.id


def remove_stale_weights(artifacts: Path, store: Store) -> list[Path]:
    """Delete what killed processes left in the store's weights folder.

    That is temporary files of writers that are gone, and weights files the
    store does not record (a ``minarch rm`` killed after its commit) once
    they are older than ``ORPHAN_AFTER_SECONDS``: a younger one may be a live
    trainer's, written just before it records it.
    """
    folder = weights_dir(artifacts, store)
    removed = remove_stale(folder)
    recorded = {Path(a.path) for a in store.artifacts()}
    cutoff = time.time() - ORPHAN_AFTER_SECONDS
    for path in folder.glob("*.pt"):
        if path not in recorded and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def writable_dir(path: Path, option: str) -> Path:
    """Fail before training, not after, when a folder cannot be written."""
    try:
        if path.exists() and not path.is_dir():
            raise OptionError(option, str(path), "is a file, expected a folder")
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise OptionError(
            option, str(path), f"cannot write there ({exc.strerror or exc})"
        ) from None
    return path
