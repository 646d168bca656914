"""Temporary files and folders whose names say which process writes them.

Files are written under a temporary name and renamed into place, so a kill
never leaves half a file under its final name; but it leaves the temporary
one. Each temporary name carries ``@host@pid@``, so the next process to write
into that folder removes the leftovers of writers that are gone, and never a
file another live process (or another machine sharing the folder) is writing.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import uuid
from pathlib import Path

_TAG = re.compile(r"@(?P<host>[^@/]+)@(?P<pid>\d+)@")


def tag() -> str:
    """This process's mark in a temporary name."""
    return f"@{socket.gethostname()}@{os.getpid()}@"


def scratch_path(path: Path, suffix: str = ".partial") -> Path:
    """Where ``path`` is written before it is renamed into place (hidden, tagged)."""
    return path.with_name(f".{path.name}{tag()}{suffix}")


def write_text(path: Path, text: str) -> Path:
    """Write beside ``path`` and rename over it: readers see the old or the new file."""
    remove_stale(path.parent)  # what a killed writer left
    tmp = scratch_path(path, f".{uuid.uuid4().hex}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def process_is_gone(host: str, pid: int) -> bool:
    """True only for a process of this host that no longer exists."""
    if host != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by another user
        return False
    return False


def remove_stale(folder: Path) -> list[Path]:
    """Remove the temporary files and folders in ``folder`` whose writer is gone."""
    removed = []
    try:
        entries = list(folder.iterdir())
    except OSError:  # no such folder yet, or not readable: nothing of ours there
        return removed
    for entry in entries:
        found = _TAG.search(entry.name)
        if found is None or not process_is_gone(found["host"], int(found["pid"])):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed
