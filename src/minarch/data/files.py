"""Official files on disk: checksums, downloads and safe archive extraction.

Every write goes to a temporary file or folder next to its target and is
renamed into place only when complete and verified, so an interrupted or
failed download or extraction never leaves a half-written file behind.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.request
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path, PurePosixPath
from typing import IO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from minarch.data.registry import Source
from minarch.errors import DataError
from minarch.scratch import remove_stale, tag

_CHUNK = 1 << 20
_TIMEOUT_S = 30
# Caps on what one archive may unpack to: far above CIFAR-100 (178 MB, 7 files) or
# an ImageNet subset (about 130,000 images, 15 GB), far below a full disk.
MAX_ARCHIVE_BYTES = 32 << 30
MAX_ARCHIVE_MEMBERS = 1_000_000
# Official digests are MD5 (32 hex digits) or SHA-256 (64), told apart by length.
_ALGORITHMS = {32: "md5", 64: "sha256"}


@dataclass(frozen=True)
class FileCheck:
    path: Path
    present: bool
    checksum_ok: bool | None
    expected_digest: str


def algorithm(digest: str) -> str:
    """``md5`` or ``sha256``: the algorithm an official hex digest was made with."""
    return _ALGORITHMS[len(digest)]


def file_digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _unpacked(root: Path, source: Source) -> bool:
    return source.extracted_dir is not None and (root / source.extracted_dir).is_dir()


def expected_files(root: Path, source: Source) -> dict[Path, str]:
    """The files that must be present: the unpacked ones when their folder exists."""
    table = source.extracted if _unpacked(root, source) else source.files
    return {root / name: md5 for name, md5 in table.items()}


def check_files(root: Path, source: Source) -> list[FileCheck]:
    checks = []
    for path, expected in expected_files(root, source).items():
        present = path.is_file()
        ok = file_digest(path, algorithm(expected)) == expected if present else None
        checks.append(FileCheck(path, present, ok, expected))
    return checks


def verify(path: Path, expected: str, *, remedy: str = "delete it to re-download") -> None:
    """Raise unless ``path`` exists with the official digest ``expected``."""
    if not path.is_file():
        raise DataError(f"{path}: missing; put the official file there")
    kind = algorithm(expected)
    actual = file_digest(path, kind)
    if actual != expected:
        raise DataError(
            f"{path}: {kind} {actual} does not match the official {expected}; "
            f"the file is corrupt or not the official one, {remedy}"
        )


def fetch(name: str, root: Path, source: Source, *, download: bool) -> None:
    """Make every official file of ``name`` present and verified under ``root``.

    An incomplete unpacked folder is the user's to fix: downloading the archive
    again could not be unpacked over it. A file with no mirror is the user's to
    put in place.
    """
    unpacked = _unpacked(root, source)
    files = expected_files(root, source)
    missing = [path for path in files if not path.is_file()]
    if missing and unpacked:
        raise DataError(
            f"{name}: {root / source.extracted_dir} is incomplete (missing "
            f"{', '.join(p.name for p in missing)}); complete it, or delete it to use "
            f"{' / '.join(source.files)} instead"
        )
    if missing and not (download and source.mirrors):
        raise DataError(_missing_message(name, root, source, missing))
    remedy = "delete it to re-download" if source.mirrors else "replace it with the right file"
    for path, expected in files.items():
        if path in missing:
            download_file(source.mirrors, path, expected)
        else:
            verify(path, expected, remedy=remedy)
    if source.extracted and not unpacked:
        for archive in source.files:
            safe_extract(root / archive, root)
        for name_in_archive, expected in source.extracted.items():
            verify(root / name_in_archive, expected)


def _missing_message(name: str, root: Path, source: Source, missing: list[Path]) -> str:
    if not source.mirrors:
        digests = expected_files(root, source)
        wanted = ", ".join(f"{p} ({algorithm(digests[p])} {digests[p]})" for p in missing)
        return (
            f"{name}: missing {wanted}; there is no official download: put the file there, "
            f"or point MINARCH_DATA_DIR at a folder holding {source.subdir}/ with it"
        )
    unpacked = f" (or its unpacked {source.extracted_dir}/)" if source.extracted_dir else ""
    return (
        f"{name}: missing {', '.join(p.name for p in missing)}{unpacked} in {root}; "
        f"download from {' or '.join(source.mirrors[:2])} (or load with download enabled), "
        f"or point MINARCH_DATA_DIR at a folder holding {source.subdir}/ with these files"
    )


def download_file(mirrors: tuple[str, ...], dest: Path, expected: str) -> None:
    """Fetch ``dest`` from the first mirror that serves the official bytes."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for mirror in mirrors:
        url = mirror + dest.name
        try:
            _download(url, dest, expected)
            return
        except (OSError, HTTPException, DataError) as exc:
            failures.append(f"{url}: {exc}")
    raise DataError(
        f"could not download {dest.name} into {dest.parent} ({'; '.join(failures)}); "
        "check the network or put the official file there by hand"
    )


def _download(url: str, dest: Path, expected: str) -> None:
    remove_stale(dest.parent)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}{tag()}", suffix=".part")
    tmp = Path(tmp_name)
    try:
        digest = hashlib.new(algorithm(expected))
        received = 0
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=_TIMEOUT_S) as resp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with _progress() as progress:
                task = progress.add_task(dest.name, total=total)
                while chunk := resp.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    progress.advance(task, len(chunk))
        if total is not None and received != total:
            raise DataError(f"truncated: got {received} of {total} bytes")
        if digest.hexdigest() != expected:
            raise DataError(
                f"{digest.name} {digest.hexdigest()} does not match the official {expected}"
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )


def safe_extract(
    archive: Path,
    target: Path,
    *,
    max_bytes: int = MAX_ARCHIVE_BYTES,
    max_members: int = MAX_ARCHIVE_MEMBERS,
) -> None:
    """Unpack regular files and folders only, within the caps, refusing paths that leave
    ``target``; nothing appears in ``target`` unless the whole archive unpacked."""
    remove_stale(target)
    staging = Path(tempfile.mkdtemp(dir=target, prefix=f".extract{tag()}"))
    try:
        with open_archive(archive, max_bytes=max_bytes, max_members=max_members) as members:
            for path, contents in members:
                dest = staging / path
                if contents is None:
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                with contents, open(dest, "wb") as out:
                    shutil.copyfileobj(contents, out, _CHUNK)
        for entry in staging.iterdir():
            os.replace(entry, target / entry.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextmanager
def open_archive(
    archive: Path,
    *,
    max_bytes: int = MAX_ARCHIVE_BYTES,
    max_members: int = MAX_ARCHIVE_MEMBERS,
) -> Iterator[Iterator[tuple[PurePosixPath, IO[bytes] | None]]]:
    """A .tar or .tar.gz's members as (checked relative path, contents; None for a folder).

    Links, devices, absolute paths, ``..``, more than ``max_members`` members or
    ``max_bytes`` bytes (sizes are declared before any data is read) and a
    corrupt or truncated file all raise a one-line DataError, also mid-read.
    """
    try:
        with tarfile.open(archive, "r:*") as tar:
            yield _checked_members(archive, tar, max_bytes, max_members)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DataError(
            f"{archive}: corrupt or truncated archive ({exc}); delete or replace it"
        ) from None


def _checked_members(
    archive: Path, tar: tarfile.TarFile, max_bytes: int, max_members: int
) -> Iterator[tuple[PurePosixPath, IO[bytes] | None]]:
    count = total = 0
    for member in tar:
        path = _member_path(archive, member)
        count, total = count + 1, total + member.size
        if count > max_members:
            raise DataError(
                f"{archive}: more than {max_members:,} members; refusing (a genuine archive "
                "this large needs a higher max_members)"
            )
        if total > max_bytes:
            raise DataError(
                f"{archive}: members add up to more than {max_bytes:,} bytes; refusing "
                "(a genuine archive this large needs a higher max_bytes)"
            )
        yield path, tar.extractfile(member) if member.isfile() else None


def _member_path(archive: Path, member: tarfile.TarInfo) -> PurePosixPath:
    path = PurePosixPath(member.name)
    if path.is_absolute() or ".." in path.parts:
        raise DataError(f"{archive}: member {member.name!r} points outside the target; refusing")
    if not (member.isfile() or member.isdir()):
        raise DataError(f"{archive}: member {member.name!r} is a link or device; refusing")
    return path
