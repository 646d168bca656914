"""What every executor needs to train a study's runs: one picklable description.

Worker processes (and Ray tasks) receive a ``Workspace`` and open their own
store connection and dataset cache from it, so nothing live crosses a process.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from minarch.errors import MinarchError


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
    """Weights live beside a SQLite file; otherwise in $MINARCH_ARTIFACTS or ./minarch-artifacts."""
    if os.environ.get("MINARCH_ARTIFACTS"):
        return Path(os.environ["MINARCH_ARTIFACTS"])
    if db_url.startswith("sqlite:///") and db_url != "sqlite:///:memory:":
        return Path(db_url.removeprefix("sqlite:///")).parent / "minarch-artifacts"
    return Path("minarch-artifacts")


def writable_dir(path: Path, option: str) -> Path:
    """Fail before training, not after, when a folder cannot be written."""
    if path.exists() and not path.is_dir():
        raise MinarchError(f"{option} {path}: is a file, expected a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise MinarchError(f"{option} {path}: cannot write there ({exc.strerror or exc})") from None
    return path
