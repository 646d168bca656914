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
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path, PurePosixPath

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

_CHUNK = 1 << 20
_TIMEOUT_S = 30


@dataclass(frozen=True)
class FileCheck:
    path: Path
    present: bool
    checksum_ok: bool | None
    expected_md5: str


def md5_file(path: Path) -> str:
    digest = hashlib.md5()
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
    for path, md5 in expected_files(root, source).items():
        present = path.is_file()
        ok = md5_file(path) == md5 if present else None
        checks.append(FileCheck(path, present, ok, md5))
    return checks


def verify(path: Path, md5: str) -> None:
    if not path.is_file():
        raise DataError(f"{path}: missing; put the official file there")
    actual = md5_file(path)
    if actual != md5:
        raise DataError(
            f"{path}: md5 {actual} does not match the official {md5}; "
            "the file is corrupt or not the official one, delete it to re-download"
        )


def fetch(name: str, root: Path, source: Source, *, download: bool) -> None:
    """Make every official file of ``name`` present and verified under ``root``.

    An incomplete unpacked folder is the user's to fix: downloading the archive
    again could not be unpacked over it.
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
    if missing and not download:
        raise DataError(_missing_message(name, root, source, missing))
    for path, md5 in files.items():
        if path in missing:
            download_file(source.mirrors, path, md5)
        else:
            verify(path, md5)
    if source.extracted and not unpacked:
        for archive in source.files:
            safe_extract(root / archive, root)
        for name_in_archive, md5 in source.extracted.items():
            verify(root / name_in_archive, md5)


def _missing_message(name: str, root: Path, source: Source, missing: list[Path]) -> str:
    unpacked = f" (or its unpacked {source.extracted_dir}/)" if source.extracted_dir else ""
    return (
        f"{name}: missing {', '.join(p.name for p in missing)}{unpacked} in {root}; "
        f"download from {' or '.join(source.mirrors[:2])} (or load with download enabled), "
        f"or point MINARCH_DATA_DIR at a folder holding {source.subdir}/ with these files"
    )


def download_file(mirrors: tuple[str, ...], dest: Path, md5: str) -> None:
    """Fetch ``dest`` from the first mirror that serves the official bytes."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for mirror in mirrors:
        url = mirror + dest.name
        try:
            _download(url, dest, md5)
            return
        except (OSError, HTTPException, DataError) as exc:
            failures.append(f"{url}: {exc}")
    raise DataError(
        f"could not download {dest.name} into {dest.parent} ({'; '.join(failures)}); "
        "check the network or put the official file there by hand"
    )


def _download(url: str, dest: Path, md5: str) -> None:
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        digest = hashlib.md5()
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
        if digest.hexdigest() != md5:
            raise DataError(f"md5 {digest.hexdigest()} does not match the official {md5}")
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


def safe_extract(archive: Path, target: Path) -> None:
    """Unpack regular files and folders only, refusing paths that leave ``target``."""
    staging = Path(tempfile.mkdtemp(dir=target, prefix=".extract-"))
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                dest = staging / _member_path(archive, member)
                if member.isdir():
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                with tar.extractfile(member) as src, open(dest, "wb") as out:
                    shutil.copyfileobj(src, out, _CHUNK)
        for entry in staging.iterdir():
            os.replace(entry, target / entry.name)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DataError(
            f"{archive}: corrupt or truncated archive ({exc}); delete it to re-download"
        ) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _member_path(archive: Path, member: tarfile.TarInfo) -> PurePosixPath:
    path = PurePosixPath(member.name)
    if path.is_absolute() or ".." in path.parts:
        raise DataError(f"{archive}: member {member.name!r} points outside the target; refusing")
    if not (member.isfile() or member.isdir()):
        raise DataError(f"{archive}: member {member.name!r} is a link or device; refusing")
    return path
