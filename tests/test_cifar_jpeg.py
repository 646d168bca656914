"""CIFAR-10 (JPEG q75): the archive read as it is, its decoded cache, hostile archives.

Fast tests write a tiny archive in the real format (a few JPEGs per class) and
point ``registry.SOURCES`` at its SHA-256; the real 60,000-image archive is read
only through MINARCH_DATA_DIR, by the slow test at the end.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import tempfile
import time
from dataclasses import replace
from pathlib import Path, PurePosixPath

import numpy as np
import pytest
import torch
from PIL import Image

import minarch
from minarch.data import check_dataset, dataset_info, load_dataset
from minarch.data.datasets import cifar_jpeg as cj
from minarch.data.files import safe_extract
from minarch.data.registry import SOURCES
from minarch.errors import DataError
from tests.cli import TINY_STUDY, error_lines
from tests.cli import minarch as run_cli

NAME = "cifar10-jpeg"


@pytest.fixture(autouse=True)
def user_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Keep the user's cache folder (the read-only fallback) inside the test's folder."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "minarch" / "derived"


def jpeg(value: int) -> bytes:
    """A flat 32x32 JPEG: its colour survives compression, so it tells classes apart."""
    out = io.BytesIO()
    Image.new("RGB", (32, 32), (value, 255 - value, 128)).save(out, "JPEG", quality=75)
    return out.getvalue()


def colour(label: int, index: int) -> int:
    return 20 * label + 5 * index


def add(tar: tarfile.TarFile, name: str, data: bytes | None = None, **fields: object) -> None:
    member = tarfile.TarInfo(name)
    member.type = tarfile.DIRTYPE if data is None and not fields else tarfile.REGTYPE
    for key, value in fields.items():
        setattr(member, key, value)
    member.size = len(data or b"")
    tar.addfile(member, io.BytesIO(data or b""))


def write_archive(
    path: Path, *, train: int = 2, test: int = 1, extra: tuple[dict, ...] = ()
) -> Path:
    """The real layout with ``train``/``test`` images per class, then any ``extra`` members."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        add(tar, "cifar10-jpeg")
        for split, count in (("test", test), ("train", train)):
            for label, name in enumerate(cj.CLASSES):
                add(tar, f"cifar10-jpeg/{split}/{name}")
                for i in range(count):
                    add(tar, f"cifar10-jpeg/{split}/{name}/{i:04d}.jpg", jpeg(colour(label, i)))
        for member in extra:
            add(tar, **member)
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def use_archive(monkeypatch: pytest.MonkeyPatch, archive: Path) -> None:
    """Make ``archive`` the official one, as ``SOURCES`` is the one seam for checksums."""
    monkeypatch.setitem(SOURCES, NAME, replace(SOURCES[NAME], files={cj.ARCHIVE: sha256(archive)}))


@pytest.fixture
def data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    data = tmp_path / "data"
    use_archive(monkeypatch, write_archive(data / NAME / cj.ARCHIVE))
    return data


def tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def cache_file(data: Path) -> Path:
    return data / NAME / f"cifar10-jpeg-{SOURCES[NAME].files[cj.ARCHIVE][:16]}.npz"


# --- the dataset ------------------------------------------------------------------------


def test_registered_with_its_own_title() -> None:
    info = dataset_info(NAME)
    assert info.title == "CIFAR-10 (JPEG q75)" and dataset_info("cifar10").title == "CIFAR-10"
    assert info.input_shape == (3, 32, 32) and info.num_classes == 10
    assert info.files == (cj.ARCHIVE,) and len(SOURCES[NAME].files[cj.ARCHIVE]) == 64
    assert list(cj.CLASSES) == sorted(cj.CLASSES)  # folder order is label order


def test_tiny_archive_loads_with_labels_from_sorted_folders(data_dir: Path) -> None:
    ds = load_dataset(NAME, data_dir, download=False)
    assert ds.train_x.shape == (20, 3, 32, 32) and ds.val_x.shape == (10, 3, 32, 32)
    assert ds.train_x.dtype == torch.uint8 and ds.train_y.dtype == torch.int64
    assert ds.train_y.tolist() == [label for label in range(10) for _ in range(2)]
    assert ds.val_y.tolist() == list(range(10))
    red = ds.train_x[:, 0].float().mean((1, 2))
    expected = torch.tensor([colour(label, i) for label in range(10) for i in range(2)])
    assert (red - expected).abs().max() < 3  # each image sits under its own folder's label


def test_second_load_comes_from_the_cache(
    monkeypatch: pytest.MonkeyPatch, data_dir: Path, user_cache: Path
) -> None:
    first = load_dataset(NAME, data_dir, download=False)
    assert cache_file(data_dir).is_file() and not user_cache.exists()
    assert cache_file(data_dir).stat().st_mode & 0o777 == 0o644

    def decode_again(archive: Path) -> None:
        raise AssertionError("decoded twice")

    monkeypatch.setattr(cj, "decode_archive", decode_again)
    again = load_dataset(NAME, data_dir, download=False)
    assert torch.equal(again.train_x, first.train_x) and torch.equal(again.val_y, first.val_y)


def test_read_only_data_folder_caches_in_the_user_folder(
    monkeypatch: pytest.MonkeyPatch, data_dir: Path, user_cache: Path
) -> None:
    folder = data_dir / NAME
    real_mkstemp = tempfile.mkstemp

    def read_only(*args: object, dir: str, **kwargs: object) -> tuple[int, str]:  # noqa: A002
        if Path(dir) == folder:
            raise OSError(30, "Read-only file system", dir)
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    before = tree(folder)
    first = load_dataset(NAME, data_dir, download=False)
    assert tree(folder) == before
    assert [p.name for p in user_cache.iterdir()] == [cache_file(data_dir).name]
    monkeypatch.setattr(cj, "decode_archive", lambda archive: pytest.fail("decoded twice"))
    assert torch.equal(load_dataset(NAME, data_dir, download=False).train_x, first.train_x)


def test_no_writable_cache_folder_is_one_line(
    monkeypatch: pytest.MonkeyPatch, data_dir: Path
) -> None:
    def read_only(*args: object, **kwargs: object) -> tuple[int, str]:
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(DataError, match="neither .* nor .* is writable; set MINARCH_DATA_DIR"):
        load_dataset(NAME, data_dir, download=False)


@pytest.mark.parametrize("download", [False, True])
def test_missing_archive_says_where_to_put_it(tmp_path: Path, download: bool) -> None:
    with pytest.raises(DataError) as err:
        load_dataset(NAME, tmp_path, download=download)
    message = str(err.value)
    assert "\n" not in message and "no official download" in message
    assert f"{tmp_path / NAME / cj.ARCHIVE} (sha256 {SOURCES[NAME].files[cj.ARCHIVE]})" in message
    assert list(tmp_path.iterdir()) == []


def test_another_archive_fails_the_checksum_and_is_not_read(tmp_path: Path) -> None:
    write_archive(tmp_path / NAME / cj.ARCHIVE)
    with pytest.raises(DataError, match="sha256 .* does not match the official a12931f6") as err:
        load_dataset(NAME, tmp_path, download=False)
    assert "replace it with the right file" in str(err.value)
    assert tree(tmp_path) == {NAME, f"{NAME}/{cj.ARCHIVE}"}


def test_datasets_frame_lists_and_checks_it(tmp_path: Path, data_dir: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert minarch.datasets(data_dir=empty).set_index("dataset").loc[NAME, "status"] == "missing"
    assert minarch.datasets(data_dir=data_dir).set_index("dataset").loc[NAME, "status"] == "ok"
    (check,) = check_dataset(NAME, data_dir)
    assert check.present and check.checksum_ok


def test_wrong_layout_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    extra = ({"name": "cifar10-jpeg/train/readme.txt", "data": b"hi"},)
    use_archive(monkeypatch, write_archive(tmp_path / NAME / cj.ARCHIVE, extra=extra))
    with pytest.raises(DataError, match="unexpected member 'cifar10-jpeg/train/readme.txt'"):
        load_dataset(NAME, tmp_path, download=False)
    extra = ({"name": "cifar10-jpeg/train/zebra/0000.jpg", "data": jpeg(0)},)
    use_archive(monkeypatch, write_archive(tmp_path / NAME / cj.ARCHIVE, extra=extra))
    with pytest.raises(DataError, match="train/ has class folders airplane, .*, zebra"):
        load_dataset(NAME, tmp_path, download=False)
    extra = ({"name": "cifar10-jpeg/test/cat/9999.jpg", "data": b"not a jpeg"},)
    use_archive(monkeypatch, write_archive(tmp_path / NAME / cj.ARCHIVE, extra=extra))
    with pytest.raises(DataError, match=r"cannot decode cifar10-jpeg/test/cat/9999\.jpg"):
        load_dataset(NAME, tmp_path, download=False)
    assert tree(tmp_path) == {NAME, f"{NAME}/{cj.ARCHIVE}"}


# --- hostile archives -------------------------------------------------------------------

HOSTILE = {
    "traversal": {"name": "cifar10-jpeg/../../escaped.jpg", "data": jpeg(0)},
    "absolute": {"name": "/tmp/minarch-escaped.jpg", "data": jpeg(0)},
    "symlink": {"name": "cifar10-jpeg/train/cat/link.jpg", "type": tarfile.SYMTYPE,
                "linkname": "/etc/passwd"},
    "hardlink": {"name": "cifar10-jpeg/train/cat/hard.jpg", "type": tarfile.LNKTYPE,
                 "linkname": "/etc/passwd"},
    "device": {"name": "cifar10-jpeg/train/cat/dev.jpg", "type": tarfile.CHRTYPE,
               "devmajor": 1, "devminor": 3},
}  # fmt: skip
REFUSALS = {
    "traversal": "points outside the target",
    "absolute": "points outside the target",
    "symlink": "link or device",
    "hardlink": "link or device",
    "device": "link or device",
    "truncated": "corrupt or truncated archive",
}


def hostile_archive(path: Path, kind: str) -> Path:
    """A real-format archive with one hostile member last, or cut short (``truncated``)."""
    if kind != "truncated":
        return write_archive(path, extra=(HOSTILE[kind],))
    write_archive(path, train=6, test=2)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def refused(call, kind: str) -> None:
    with pytest.raises(DataError, match=REFUSALS[kind]) as err:
        call()
    assert "\n" not in str(err.value)


def assert_nothing_escaped(tmp_path: Path) -> None:
    assert (
        not (tmp_path.parent / "escaped.jpg").exists() and not (tmp_path / "escaped.jpg").exists()
    )
    assert not Path("/tmp/minarch-escaped.jpg").exists()


@pytest.mark.parametrize("kind", REFUSALS)
def test_hostile_archive_as_the_dataset(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kind: str
) -> None:
    data = tmp_path / "data"
    use_archive(monkeypatch, hostile_archive(data / NAME / cj.ARCHIVE, kind))
    refused(lambda: load_dataset(NAME, data, download=False), kind)
    assert tree(tmp_path) == {"data", f"data/{NAME}", f"data/{NAME}/{cj.ARCHIVE}"}
    assert_nothing_escaped(tmp_path)


@pytest.mark.parametrize("kind", REFUSALS)
def test_hostile_archive_as_an_image_folder(tmp_path: Path, kind: str) -> None:
    archive = hostile_archive(tmp_path / "mine.tar.gz", kind)
    refused(lambda: load_dataset("imagefolder", Path("unused"), path=archive), kind)
    assert tree(tmp_path) == {"mine.tar.gz"}
    assert_nothing_escaped(tmp_path)


@pytest.mark.parametrize("kind", REFUSALS)
def test_hostile_archive_extracted_directly(tmp_path: Path, kind: str) -> None:
    archive = hostile_archive(tmp_path / "mine.tar.gz", kind)
    target = tmp_path / "target"
    target.mkdir()
    refused(lambda: safe_extract(archive, target), kind)
    assert tree(tmp_path) == {"mine.tar.gz", "target"}
    assert_nothing_escaped(tmp_path)


def test_the_real_format_archive_also_loads_as_an_image_folder(data_dir: Path) -> None:
    archive = data_dir / NAME / cj.ARCHIVE
    folder = load_dataset("imagefolder", Path("unused"), path=archive, image_size=32)
    jpeg_ds = load_dataset(NAME, data_dir, download=False)
    assert folder.info.num_classes == 10
    assert torch.equal(folder.train_x, jpeg_ds.train_x)
    assert torch.equal(folder.val_y, jpeg_ds.val_y)  # test/ serves as val/


# --- the CLI, end to end ----------------------------------------------------------------


@pytest.mark.slow
def test_cli_exits_2_with_one_line_on_a_hostile_archive(tmp_path: Path) -> None:
    """Only the user's own archive (imagefolder) has no official checksum to stop it."""
    archive = hostile_archive(tmp_path / "data" / "mine.tar.gz", "traversal")
    study = TINY_STUDY.replace(
        "[digits]", f"[{{name: imagefolder, path: {archive}, image_size: 8}}]"
    )
    (tmp_path / "study.yaml").write_text(study)
    result = run_cli("plan", "study.yaml", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert len(error_lines(result)) == 1 and "points outside the target" in result.stderr
    assert tree(tmp_path / "data") == {"mine.tar.gz"}
    assert_nothing_escaped(tmp_path / "data")


@pytest.mark.slow
def test_cli_datasets_check_and_run_refuse_a_hostile_cifar_archive(tmp_path: Path) -> None:
    """In the data folder a hostile archive fails the official SHA-256 before it is read."""
    data = tmp_path / "data"
    hostile_archive(data / NAME / cj.ARCHIVE, "traversal")
    check = run_cli("datasets", "check", "--data-dir", str(data), cwd=tmp_path)
    assert check.returncode == 0, check.stderr
    row = next(line for line in check.stdout.splitlines() if NAME in line)
    assert "checksum mismatch" in row
    (tmp_path / "study.yaml").write_text(TINY_STUDY.replace("[digits]", f"[{NAME}]"))
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    result = run_cli(
        "run", "study.yaml", "--db", db, "--data-dir", str(data), "--device", "cpu", cwd=tmp_path
    )
    assert result.returncode == 2, result.stderr
    assert len(error_lines(result)) == 1 and "does not match the official" in result.stderr
    assert tree(data) == {NAME, f"{NAME}/{cj.ARCHIVE}"}
    assert_nothing_escaped(data)


# --- the real archive -------------------------------------------------------------------

REAL = os.environ.get("MINARCH_DATA_DIR")
REAL_ARCHIVE = Path(REAL or ".") / NAME / cj.ARCHIVE


@pytest.mark.slow
@pytest.mark.long(30)
@pytest.mark.real_data(NAME)
def test_real_archive(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Decoded once into a temporary data folder (the shared one stays untouched)."""
    data = tmp_path / "data"
    (data / NAME).mkdir(parents=True)
    (data / NAME / cj.ARCHIVE).symlink_to(REAL_ARCHIVE.resolve())
    (check,) = check_dataset(NAME, data)
    assert check.present and check.checksum_ok
    start = time.perf_counter()
    ds = load_dataset(NAME, data, download=False)
    decode_s = time.perf_counter() - start
    assert ds.train_x.shape == (50000, 3, 32, 32) and ds.val_x.shape == (10000, 3, 32, 32)
    assert ds.info.train_size == 50000
    assert ds.train_x.dtype == torch.uint8
    assert torch.bincount(ds.train_y).tolist() == [5000] * 10
    assert torch.bincount(ds.val_y).tolist() == [1000] * 10
    mean = (ds.mean / 255).tolist()
    assert mean == pytest.approx([0.491, 0.481, 0.443], abs=0.01)
    with tarfile.open(REAL_ARCHIVE) as tar:  # label k is the k-th sorted class folder
        folders = sorted({PurePosixPath(n).parts[2] for n in tar.getnames() if n.count("/") >= 3})
        cat = tar.extractfile("cifar10-jpeg/train/cat/0000.jpg").read()
    assert tuple(folders) == cj.CLASSES
    first_cat = int(torch.nonzero(ds.train_y == folders.index("cat"))[0])
    decoded = np.asarray(Image.open(io.BytesIO(cat)).convert("RGB")).transpose(2, 0, 1)
    assert np.array_equal(ds.train_x[first_cat].numpy(), decoded)
    assert cache_file(data).is_file()
    monkeypatch.setattr(cj, "decode_archive", lambda archive: pytest.fail("decoded twice"))
    start = time.perf_counter()
    again = load_dataset(NAME, data, download=False)
    cached_s = time.perf_counter() - start
    assert torch.equal(again.train_x, ds.train_x) and torch.equal(again.val_y, ds.val_y)
    print(f"cifar10-jpeg: first load {decode_s:.1f} s, cached load {cached_s:.2f} s")
