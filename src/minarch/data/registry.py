"""The dataset catalog: the package's one table of names, shapes and sources; no torch.

Each module of ``data/datasets/`` registers its datasets under explicit names when
imported, and ``load_catalog`` imports them all the first time a name is asked for.
``SOURCES`` holds every official file's digest and download mirrors, one entry per
dataset, and is read at call time, so a test can swap in its own files with
``monkeypatch.setitem(SOURCES, name, ...)`` instead of a checksum-skipping flag.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from minarch.errors import DataError
from minarch.plugins import load_catalog

if TYPE_CHECKING:
    from minarch.data.dataset import Dataset


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset is, known without loading it.

    ``title`` is the name reports and tables print (e.g. "CIFAR-10 (JPEG q75)",
    so a re-encoding is never passed off as the original); it defaults to ``name``.
    ``difficulty`` ranks the registered datasets from easy to hard (reports and
    tables list them in that order); every registered dataset must give one.
    ``train_size`` is the number of images in the train split the loader gives
    (None where unknown): ``minarch plan --time`` counts steps from it.
    """

    name: str
    input_shape: tuple[int, ...]
    num_classes: int
    description: str
    files: tuple[str, ...] = ()
    title: str = ""
    difficulty: int | None = None
    train_size: int | None = None

    def __post_init__(self) -> None:
        if not self.title:
            object.__setattr__(self, "title", self.name)


@dataclass(frozen=True)
class Source:
    """Where a dataset's official files live on disk and on the network.

    ``files`` maps each official file to its MD5 or SHA-256 hex digest; the file's
    URL is a mirror plus its name (no mirrors: the user puts the file there).
    ``extracted`` maps the files inside an archive (paths under the dataset's
    directory) to their digests, for users who unpacked it already.
    """

    subdir: str
    files: Mapping[str, str]
    mirrors: tuple[str, ...]
    extracted: Mapping[str, str] = field(default_factory=dict)

    @property
    def extracted_dir(self) -> str | None:
        """The archive's top folder: when it exists, it is used instead of the archive."""
        if not self.extracted:
            return None
        return PurePosixPath(next(iter(self.extracted))).parts[0]


@dataclass(frozen=True)
class LoadRequest:
    """Everything a loader needs, resolved by ``load_dataset``."""

    info: DatasetInfo
    root: Path
    source: Source | None
    download: bool
    path: Path | None
    image_size: int | None


Loader = Callable[[LoadRequest], "Dataset"]
# For datasets read from a user's folder: the info (shape, classes) of that folder.
Describer = Callable[[Path, "int | None"], DatasetInfo]


@dataclass(frozen=True)
class Entry:
    info: DatasetInfo
    loader: Loader
    describe: Describer | None

    @property
    def takes_path(self) -> bool:
        return self.describe is not None


BUILT_IN = "minarch.data.datasets"
_ENTRIES: dict[str, Entry] = {}
SOURCES: dict[str, Source] = {}


def register(
    info: DatasetInfo, *, source: Source | None = None, describe: Describer | None = None
) -> Callable[[Loader], Loader]:
    """Register ``info`` with the decorated loader; a second entry under a name is an error."""

    def decorate(loader: Loader) -> Loader:
        if info.name in _ENTRIES:
            raise DataError(f"dataset {info.name!r} is already registered")
        if info.difficulty is None:
            raise DataError(f"dataset {info.name!r} is registered without a difficulty rank")
        files = tuple(source.files) if source else ()
        _ENTRIES[info.name] = Entry(replace(info, files=files), loader, describe)
        if source is not None:
            SOURCES[info.name] = source
        return loader

    return decorate


def get_entry(name: str) -> Entry:
    load_catalog(BUILT_IN)  # built-in and plugin datasets are looked up alike
    try:
        return _ENTRIES[name]
    except KeyError:
        raise DataError(
            f"unknown dataset {name!r}; valid names: {', '.join(dataset_names())}"
        ) from None


def needs_folder(name: str) -> bool:
    """True for datasets read from the user's own folder (the study gives ``path``)."""
    return get_entry(name).takes_path


def dataset_names() -> list[str]:
    load_catalog(BUILT_IN)
    return sorted(_ENTRIES)


def dataset_info(
    name: str, *, path: Path | None = None, image_size: int | None = None
) -> DatasetInfo:
    """Shape, classes and files of ``name``; only a user's folder (``path``) is looked at."""
    entry = get_entry(name)
    if entry.describe is not None and path is not None:
        return entry.describe(Path(path), image_size)
    return entry.info
