"""minarch.data: registry, official-format readers, checksums, downloads, splits, augmentation.

Official files are stood in for by small files written here in the same format;
``registry.SOURCES`` is the one seam that points a dataset at their MD5s and a
local server. Real MNIST / Fashion-MNIST are read only through MINARCH_DATA_DIR.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import os
import pickle
import random
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from minarch.data import (
    check_dataset,
    dataset_info,
    dataset_names,
    default_data_dir,
    load_dataset,
    split_dataset,
)
from minarch.data.augment import augment
from minarch.data.datasets.idx import read_idx
from minarch.data.files import safe_extract
from minarch.data.registry import SOURCES, DatasetInfo, register
from minarch.errors import DataError, MinarchError

IDX_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def write_idx(path: Path, array: np.ndarray, magic: int) -> None:
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def write_idx_dataset(folder: Path, n_train: int = 30, n_test: int = 10) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte.gz": np.arange(n_train) % 10,
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte.gz": np.arange(n_test) % 10,
    }
    for name, array in arrays.items():
        write_idx(folder / name, array, 2051 if array.ndim == 3 else 2049)
    return arrays


def use_files(monkeypatch: pytest.MonkeyPatch, name: str, folder: Path, **changes: object) -> None:
    """Point ``name``'s checksums at the files written in ``folder``."""
    source = SOURCES[name]
    files = {f: md5(folder / f) for f in source.files}
    monkeypatch.setitem(SOURCES, name, replace(source, files=files, **changes))


# --- registry ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", dataset_names())
def test_every_registered_dataset_has_info(name: str) -> None:
    info = dataset_info(name)
    assert info.name == name
    assert len(info.input_shape) in (2, 3) and all(d > 0 for d in info.input_shape)
    assert info.description and "\n" not in info.description
    assert info.files == (tuple(SOURCES[name].files) if name in SOURCES else ())
    if name != "imagefolder":
        assert info.num_classes >= 10
        assert info.train_size and info.train_size > 0  # plan --time counts steps from it


def test_registry_holds_the_named_datasets() -> None:
    assert dataset_names() == sorted(
        ["mnist", "fashion-mnist", "kmnist", "cifar10", "cifar100", "digits", "mnist1d"]
        + ["cifar10-jpeg"]
        + ["imagefolder"]
    )
    assert dataset_info("mnist").input_shape == (1, 28, 28)
    assert dataset_info("cifar100").num_classes == 100
    assert dataset_info("mnist1d").input_shape == (1, 40)


@pytest.mark.parametrize(
    "call",
    [dataset_info, lambda n: load_dataset(n, Path(".")), lambda n: check_dataset(n, Path("."))],
)
def test_unknown_name_lists_valid_names(call) -> None:
    with pytest.raises(DataError, match="valid names: cifar10, cifar10-jpeg, cifar100, dig") as err:
        call("mnsit")
    assert "'mnsit'" in str(err.value) and isinstance(err.value, MinarchError)


def test_duplicate_registration_is_an_error() -> None:
    with pytest.raises(DataError, match="'mnist' is already registered"):
        register(DatasetInfo("mnist", (1, 28, 28), 10, "again"))(lambda req: None)
    assert dataset_info("mnist").description.startswith("Handwritten")


def test_titles_name_each_dataset_for_reports() -> None:
    assert dataset_info("cifar10").title == "CIFAR-10"
    assert dataset_info("fashion-mnist").title == "Fashion-MNIST"
    assert DatasetInfo("random", (1, 4), 2, "no title given").title == "random"


def test_default_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MINARCH_DATA_DIR", str(tmp_path))
    assert default_data_dir() == tmp_path
    monkeypatch.delenv("MINARCH_DATA_DIR")
    assert default_data_dir().name == "datasets" and "minarch" in str(default_data_dir())


# --- IDX --------------------------------------------------------------------------------


def test_idx_dataset_loads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    arrays = write_idx_dataset(tmp_path / "kmnist")
    use_files(monkeypatch, "kmnist", tmp_path / "kmnist")
    ds = load_dataset("kmnist", tmp_path, download=False)
    assert ds.train_x.shape == (30, 1, 28, 28) and ds.train_x.dtype == torch.uint8
    assert ds.val_x.shape == (10, 1, 28, 28) and ds.val_y.dtype == torch.int64
    assert np.array_equal(ds.train_x[:, 0].numpy(), arrays["train-images-idx3-ubyte.gz"])
    assert ds.train_y.tolist() == arrays["train-labels-idx1-ubyte.gz"].tolist()
    assert all(c.present and c.checksum_ok for c in check_dataset("kmnist", tmp_path))


def test_idx_wrong_magic(tmp_path: Path) -> None:
    path = tmp_path / "labels.gz"
    write_idx(path, np.zeros(5), 2049)
    with pytest.raises(DataError, match=r"labels\.gz.*magic number 2049, expected 2051"):
        read_idx(path, 2051)


def test_idx_truncated_gzip(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    folder = tmp_path / "mnist"
    write_idx_dataset(folder)
    path = folder / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-200])
    use_files(monkeypatch, "mnist", folder)
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: not a complete gzip"):
        load_dataset("mnist", tmp_path, download=False)


def test_idx_truncated_payload(tmp_path: Path) -> None:
    path = tmp_path / "images.gz"
    with gzip.open(path, "wb") as f:
        f.write((2051).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in (3, 2, 2)))
        f.write(bytes(5))
    with pytest.raises(DataError, match="truncated"):
        read_idx(path, 2051)


# --- checksums and missing files --------------------------------------------------------


def test_checksum_mismatch_names_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    folder = tmp_path / "mnist"
    write_idx_dataset(folder)
    use_files(monkeypatch, "mnist", folder)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.ones(10), 2049)
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz: md5 \w+ .*delete it"):
        load_dataset("mnist", tmp_path, download=False)
    checks = {c.path.name: c for c in check_dataset("mnist", tmp_path)}
    assert checks["t10k-labels-idx1-ubyte.gz"].checksum_ok is False
    assert checks["train-labels-idx1-ubyte.gz"].checksum_ok is True


def test_missing_files_without_download(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        load_dataset("fashion-mnist", tmp_path, download=False)
    message = str(err.value)
    assert str(tmp_path / "fashion-mnist") in message
    assert all(name in message for name in IDX_FILES)
    assert "http" in message
    checks = check_dataset("fashion-mnist", tmp_path)
    assert [c.path.name for c in checks] == list(IDX_FILES)
    assert all(not c.present and c.checksum_ok is None for c in checks)


def test_generated_datasets_have_no_files(tmp_path: Path) -> None:
    assert check_dataset("digits", tmp_path) == []
    assert check_dataset("mnist1d", tmp_path) == []


def test_path_and_image_size_only_for_imagefolder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="drop path/image_size"):
        load_dataset("digits", tmp_path, image_size=32)
    with pytest.raises(DataError, match="needs a path"):
        load_dataset("imagefolder", tmp_path)


# --- CIFAR ------------------------------------------------------------------------------

CIFAR = {
    "cifar10": ("cifar-10", "cifar-10-python.tar.gz", "cifar-10-batches-py", b"labels", 10),
    "cifar100": ("cifar-100", "cifar-100-python.tar.gz", "cifar-100-python", b"fine_labels", 100),
}


def write_cifar(
    monkeypatch: pytest.MonkeyPatch, name: str, root: Path, *, archive: bool
) -> dict[str, torch.Tensor]:
    """Official-format batches (unpacked, or packed into the official archive name)."""
    subdir, tar_name, folder, label_key, classes = CIFAR[name]
    batches = [Path(p).name for p in SOURCES[name].extracted]
    rng = np.random.default_rng(1)
    staging = root / "staging" if archive else root / subdir
    train, test = [], []
    for batch in batches:
        data = rng.integers(0, 256, (4, 3072), dtype=np.uint8)
        labels = [int(y) for y in rng.integers(0, classes, 4)]
        content = {b"data": data, label_key: labels, b"batch_label": batch.encode()}
        if batch in ("batches.meta", "meta"):
            content = {b"label_names": [b"a"] * classes}
        elif batch.startswith("test"):
            test.append((data, labels))
        else:
            train.append((data, labels))
        (staging / folder).mkdir(parents=True, exist_ok=True)
        (staging / folder / batch).write_bytes(pickle.dumps(content, protocol=2))
    extracted = {f"{folder}/{b}": md5(staging / folder / b) for b in batches}
    files = dict(SOURCES[name].files)
    if archive:
        (root / subdir).mkdir(parents=True)
        with tarfile.open(root / subdir / tar_name, "w:gz") as tar:
            tar.add(staging / folder, arcname=folder)
        files = {tar_name: md5(root / subdir / tar_name)}
    monkeypatch.setitem(SOURCES, name, replace(SOURCES[name], files=files, extracted=extracted))

    def stack(parts):
        x = np.concatenate([d for d, _ in parts]).reshape(-1, 3, 32, 32)
        return torch.from_numpy(x), torch.tensor([y for _, ys in parts for y in ys])

    (train_x, train_y), (test_x, test_y) = stack(train), stack(test)
    return {"train_x": train_x, "train_y": train_y, "val_x": test_x, "val_y": test_y}


@pytest.mark.parametrize("archive", [True, False], ids=["tar.gz", "unpacked"])
@pytest.mark.parametrize("name", list(CIFAR))
def test_cifar_loads(
    monkeypatch: pytest.MonkeyPatch, name: str, archive: bool, tmp_path: Path
) -> None:
    expected = write_cifar(monkeypatch, name, tmp_path, archive=archive)
    ds = load_dataset(name, tmp_path, download=False)
    assert ds.info.num_classes == CIFAR[name][4]
    for field, tensor in expected.items():
        assert torch.equal(getattr(ds, field), tensor), field
    assert ds.train_x.dtype == torch.uint8 and ds.train_x.shape[1:] == (3, 32, 32)
    assert len(ds.train_x) == (20 if name == "cifar10" else 4)
    unpacked = tmp_path / CIFAR[name][0] / CIFAR[name][2]
    assert unpacked.is_dir() and not list((tmp_path / CIFAR[name][0]).glob(".extract-*"))
    checks = check_dataset(name, tmp_path)
    assert all(c.checksum_ok for c in checks) and all(unpacked in c.path.parents for c in checks)
    assert torch.equal(load_dataset(name, tmp_path, download=False).val_x, ds.val_x)


def test_cifar_incomplete_unpacked_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    write_cifar(monkeypatch, "cifar10", tmp_path, archive=False)
    (tmp_path / "cifar-10" / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(
        DataError, match=r"cifar-10-batches-py is incomplete \(missing data_batch_3\)"
    ):
        load_dataset("cifar10", tmp_path)


def test_cifar_truncated_archive(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    write_cifar(monkeypatch, "cifar100", tmp_path, archive=True)
    archive = tmp_path / "cifar-100" / "cifar-100-python.tar.gz"
    archive.write_bytes(archive.read_bytes()[:-300])
    monkeypatch.setitem(
        SOURCES, "cifar100", replace(SOURCES["cifar100"], files={archive.name: md5(archive)})
    )
    with pytest.raises(DataError, match=r"cifar-100-python\.tar\.gz: corrupt or truncated"):
        load_dataset("cifar100", tmp_path, download=False)
    assert sorted(p.name for p in archive.parent.iterdir()) == [archive.name]


def tar_with(path: Path, member: tarfile.TarInfo, data: bytes = b"") -> Path:
    with tarfile.open(path, "w:gz") as tar:
        member.size = len(data)
        tar.addfile(member, io.BytesIO(data))
    return path


@pytest.mark.parametrize("member_name", ["../escape.txt", "/tmp/minarch-escape.txt", "a/../../x"])
def test_safe_extract_refuses_escaping_paths(tmp_path: Path, member_name: str) -> None:
    target = tmp_path / "target"
    target.mkdir()
    archive = tar_with(tmp_path / "evil.tar.gz", tarfile.TarInfo(member_name), b"evil")
    with pytest.raises(DataError, match="points outside the target"):
        safe_extract(archive, target)
    assert list(target.iterdir()) == [] and not (tmp_path / "escape.txt").exists()
    assert not Path("/tmp/minarch-escape.txt").exists()


def test_safe_extract_refuses_links(tmp_path: Path) -> None:
    member = tarfile.TarInfo("link")
    member.type, member.linkname = tarfile.SYMTYPE, "/etc/passwd"
    archive = tar_with(tmp_path / "link.tar.gz", member)
    with pytest.raises(DataError, match="link or device"):
        safe_extract(archive, tmp_path)
    assert not (tmp_path / "link").exists()


def gzip_bomb(path: Path, members: int, size: int) -> Path:
    """``members`` files of ``size`` zero bytes: kilobytes on disk, ``members * size`` unpacked."""
    with tarfile.open(path, "w:gz") as tar:
        for i in range(members):
            member = tarfile.TarInfo(f"bomb/{i}.bin")
            member.size = size
            tar.addfile(member, io.BytesIO(bytes(size)))
    return path


@pytest.mark.parametrize(
    ("caps", "message"),
    [
        ({"max_bytes": 3 << 20}, "add up to more than 3,145,728 bytes"),
        ({"max_members": 3}, "more than 3 members"),
    ],
)
def test_safe_extract_caps_bytes_and_members(
    tmp_path: Path, caps: dict[str, int], message: str
) -> None:
    archive = gzip_bomb(tmp_path / "bomb.tar.gz", members=4, size=1 << 20)
    assert archive.stat().st_size < 20_000
    target = tmp_path / "target"
    target.mkdir()
    with pytest.raises(DataError, match=message) as err:
        safe_extract(archive, target, **caps)
    assert "\n" not in str(err.value) and str(archive) in str(err.value)
    assert list(target.iterdir()) == []
    safe_extract(archive, target)  # the default caps let a real-sized archive through
    assert len(list((target / "bomb").iterdir())) == 4


# --- download ---------------------------------------------------------------------------


class _Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802  (http.server's name)
        if self.path.startswith("/cut/"):  # promises more bytes than it sends
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"\x1f\x8b" + bytes(100))
            return
        super().do_GET()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A local HTTP server over a fresh folder; yields its base URL and the folder."""
    served = tmp_path / "served"
    served.mkdir()

    def handler(*args, **kwargs):
        return _Handler(*args, directory=str(served), **kwargs)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", served
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_download_from_second_mirror(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, server: tuple[str, Path]
) -> None:
    url, served = server
    write_idx_dataset(served)
    use_files(monkeypatch, "mnist", served, mirrors=(url + "missing/", url))
    data_dir = tmp_path / "data"
    ds = load_dataset("mnist", data_dir, download=True)
    assert ds.train_x.shape == (30, 1, 28, 28)
    assert sorted(p.name for p in (data_dir / "mnist").iterdir()) == sorted(IDX_FILES)
    assert all(c.checksum_ok for c in check_dataset("mnist", data_dir))


@pytest.mark.parametrize(
    ("mirror", "reason"),
    [("", "does not match the official"), ("cut/", "truncated"), ("nowhere/", "404")],
    ids=["bad-md5", "cut", "404"],
)
def test_failed_download_leaves_no_file(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    server: tuple[str, Path],
    mirror: str,
    reason: str,
) -> None:
    url, served = server
    write_idx_dataset(served)
    use_files(monkeypatch, "mnist", served, mirrors=(url + mirror,))
    write_idx(served / "t10k-images-idx3-ubyte.gz", np.zeros((10, 28, 28)), 2051)  # not official
    data_dir = tmp_path / "data"
    with pytest.raises(DataError, match=r"could not download [\w-]+\.gz into .*data/mnist") as err:
        load_dataset("mnist", data_dir, download=True)
    assert reason in str(err.value)
    left = list((data_dir / "mnist").iterdir())
    assert all(md5(p) == SOURCES["mnist"].files[p.name] for p in left)  # only verified files
    assert "t10k-images-idx3-ubyte.gz" not in [p.name for p in left]


# --- generated datasets -----------------------------------------------------------------


def test_digits() -> None:
    ds = load_dataset("digits", Path("unused"))
    assert ds.train_x.shape == (1437, 1, 8, 8) and ds.val_x.shape == (360, 1, 8, 8)
    assert ds.info.train_size == 1437
    assert ds.train_x.dtype == torch.uint8 and int(ds.train_x.max()) == 16
    assert ((torch.bincount(ds.val_y) - 0.2 * torch.bincount(ds.train_y) / 0.8).abs() < 2).all()
    assert set(ds.train_y.tolist()) == set(range(10)) and ds.info.num_classes == 10
    assert torch.equal(load_dataset("digits", Path("unused")).val_x, ds.val_x)


def test_mnist1d_generates_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    np.random.seed(7)
    random.seed(7)
    ds = load_dataset("mnist1d", tmp_path)
    after = (np.random.rand(), random.random())
    np.random.seed(7)
    random.seed(7)
    assert (np.random.rand(), random.random()) == after  # global generators left as they were
    assert ds.train_x.shape == (4000, 1, 40) and ds.val_x.shape == (1000, 1, 40)
    assert ds.info.train_size == 4000
    assert ds.train_x.dtype == torch.float32 and ds.train_y.dtype == torch.int64
    assert ds.info.num_classes == 10 and set(ds.val_y.tolist()) == set(range(10))
    assert [p.name for p in (tmp_path / "mnist1d").iterdir()] == ["mnist1d-default.npz"]

    def regenerate(*args: object) -> None:
        raise AssertionError("MNIST-1D generated twice")

    monkeypatch.setattr("mnist1d.data.make_dataset", regenerate)
    again = load_dataset("mnist1d", tmp_path)
    assert torch.equal(again.train_x, ds.train_x) and torch.equal(again.val_y, ds.val_y)


# --- image folder -----------------------------------------------------------------------


def write_png(path: Path, size: tuple[int, int], colour: tuple[int, int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def image_folder(root: Path) -> Path:
    write_png(root / "train" / "cat" / "a.png", (20, 10), (255, 0, 0))
    write_png(root / "train" / "cat" / "b.png", (12, 12), (250, 0, 0))
    write_png(root / "train" / "ant" / "a.png", (10, 30), (0, 0, 255))
    Image.new("L", (9, 9), 128).save(root / "train" / "ant" / "grey.png")
    write_png(root / "test" / "cat" / "c.png", (16, 16), (255, 0, 0))
    return root


def test_imagefolder_loads(tmp_path: Path) -> None:
    ds = load_dataset("imagefolder", Path("unused"), path=image_folder(tmp_path), image_size=8)
    assert ds.info.num_classes == 2 and ds.info.input_shape == (3, 8, 8)
    assert ds.train_x.shape == (4, 3, 8, 8) and ds.train_x.dtype == torch.uint8
    assert ds.info.train_size == 4  # counted without decoding, for plan --time
    assert ds.train_y.tolist() == [0, 0, 1, 1]  # ant < cat; files sorted
    assert ds.train_x[0, 2].eq(255).all() and ds.train_x[0, :2].eq(0).all()  # blue ant
    assert ds.train_x[1].eq(128).all()  # greyscale converted to RGB
    assert ds.val_x.shape == (1, 3, 8, 8) and ds.val_y.tolist() == [1]
    default = load_dataset("imagefolder", Path("unused"), path=tmp_path)
    assert default.train_x.shape[1:] == (3, 64, 64)


def test_imagefolder_bad_file_and_layout(tmp_path: Path) -> None:
    root = image_folder(tmp_path / "ok")
    (root / "train" / "cat" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"cannot decode .*broken\.png"):
        load_dataset("imagefolder", Path("unused"), path=root)
    write_png(tmp_path / "noval" / "train" / "a" / "x.png", (4, 4), (0, 0, 0))
    with pytest.raises(DataError, match="no val/ or test/ folder"):
        load_dataset("imagefolder", Path("unused"), path=tmp_path / "noval")
    with pytest.raises(DataError, match="no train/ folder"):
        load_dataset("imagefolder", Path("unused"), path=tmp_path / "missing")
    write_png(tmp_path / "noval" / "val" / "zebra" / "x.png", (4, 4), (0, 0, 0))
    with pytest.raises(DataError, match="classes not in train/: zebra"):
        load_dataset("imagefolder", Path("unused"), path=tmp_path / "noval")


@pytest.mark.parametrize("top", ["", "photos/"])
def test_imagefolder_reads_an_archive_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, top: str
) -> None:
    folder = image_folder(tmp_path / "photos")
    archive = tmp_path / "shared" / "photos.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(folder.rglob("*")):
            tar.add(path, f"{top}{path.relative_to(folder)}", recursive=False)
    expected = load_dataset("imagefolder", Path("unused"), path=folder, image_size=8)
    ds = load_dataset("imagefolder", Path("unused"), path=archive, image_size=8)
    assert torch.equal(ds.train_x, expected.train_x) and torch.equal(ds.val_y, expected.val_y)
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()[:16]
    assert sorted(p.name for p in archive.parent.iterdir()) == [f"photos-{digest}", archive.name]
    monkeypatch.setattr("minarch.data.files.safe_extract", lambda *a: pytest.fail("unpacked twice"))
    assert dataset_info("imagefolder", path=archive).num_classes == 2
    again = load_dataset("imagefolder", Path("unused"), path=archive, image_size=8)
    assert torch.equal(again.train_x, expected.train_x)


def test_imagefolder_file_that_is_no_archive(tmp_path: Path) -> None:
    (tmp_path / "photos.zip").write_bytes(b"PK")
    with pytest.raises(DataError, match=r"photos\.zip is a file but not a .tar/.tar.gz/.tgz"):
        load_dataset("imagefolder", Path("unused"), path=tmp_path / "photos.zip")


# --- statistics and splits --------------------------------------------------------------


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", Path("unused"))


def test_normalize_gives_zero_mean_unit_std(digits) -> None:
    z = digits.normalize(digits.train_x)
    assert z.dtype == torch.float32 and z.shape == digits.train_x.shape
    assert abs(z.mean().item()) < 1e-4 and abs(z.std().item() - 1) < 1e-3
    assert digits.mean.shape == (1,) and 4 < digits.mean.item() < 6  # raw 0..16 units


def test_normalize_is_per_channel_for_images_and_signals() -> None:
    from minarch.data.dataset import build_dataset

    info = DatasetInfo("t", (3, 4, 4), 2, "test")
    x = torch.randint(0, 256, (50, 3, 4, 4), dtype=torch.uint8)
    x[:, 1] //= 4
    ds = build_dataset(info, x, torch.zeros(50, dtype=torch.long), x, torch.zeros(50).long())
    z = ds.normalize(x)
    assert torch.allclose(z.mean((0, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(z.std((0, 2, 3), unbiased=False), torch.ones(3), atol=1e-4)
    as_signals = ds.normalize(x.flatten(2))  # (N, C, L): the same channel statistics
    assert torch.allclose(as_signals, z.flatten(2))


def test_split_train_fraction_is_stratified_and_seeded(digits) -> None:
    half = split_dataset(digits, train_fraction=0.5, seed=3)
    assert abs(len(half.train_y) - len(digits.train_y) / 2) <= 10
    counts, full = torch.bincount(half.train_y), torch.bincount(digits.train_y)
    assert ((counts - full / 2).abs() <= 1).all()
    assert torch.equal(half.val_x, digits.val_x)  # "test" keeps the official split
    assert torch.equal(split_dataset(digits, train_fraction=0.5, seed=3).train_x, half.train_x)
    assert not torch.equal(split_dataset(digits, train_fraction=0.5, seed=4).train_x, half.train_x)
    assert not torch.equal(half.mean, digits.mean)  # recomputed on the subset
    assert split_dataset(digits, train_fraction=0.001).train_y.unique().numel() == 10


def test_split_holds_out_validation_from_train(digits) -> None:
    split = split_dataset(digits, validation=0.2, seed=0)
    assert len(split.train_y) + len(split.val_y) == len(digits.train_y)
    assert abs(len(split.val_y) - 0.2 * len(digits.train_y)) <= 10
    rows = {tuple(r.tolist()) for r in digits.train_x.flatten(1)}
    assert all(tuple(r.tolist()) in rows for r in split.val_x.flatten(1))  # test split gone
    both = split_dataset(digits, validation=0.2, train_fraction=0.5, seed=0)
    assert torch.equal(both.val_x, split.val_x)  # same validation whatever the fraction
    assert len(both.train_y) < len(split.train_y)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"train_fraction": 0},
        {"train_fraction": 1.5},
        {"validation": 0.0},
        {"validation": 1.0},
        {"validation": "train"},
        {"validation": True},
    ],
)
def test_split_rejects_out_of_range(digits, kwargs) -> None:
    with pytest.raises(DataError):
        split_dataset(digits, **kwargs)


def test_to_moves_every_tensor(digits) -> None:
    moved = digits.to("cpu")
    assert moved.train_x.device.type == "cpu" and moved.info == digits.info


# --- augmentation -----------------------------------------------------------------------


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def distinct(shape: tuple[int, ...]) -> torch.Tensor:
    """Values 1..n, so a window of the zero-padded input matches one place only."""
    return torch.arange(1, int(np.prod(shape)) + 1, dtype=torch.float32).reshape(shape)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
@pytest.mark.parametrize("shape", [(6, 3, 8, 8), (6, 1, 40)])
@pytest.mark.parametrize("kind", ["none", "crop", "crop-flip"])
def test_augment_keeps_shape_and_dtype(kind: str, shape: tuple[int, ...], dtype) -> None:
    x = torch.randint(0, 256, shape).to(dtype)
    out = augment(x, kind, gen(0))
    assert out.shape == x.shape and out.dtype == dtype
    if kind == "none":
        assert out is x


def test_augment_is_seeded() -> None:
    x = torch.rand(16, 3, 12, 12)
    assert torch.equal(augment(x, "crop-flip", gen(1)), augment(x, "crop-flip", gen(1)))
    assert not torch.equal(augment(x, "crop-flip", gen(1)), augment(x, "crop-flip", gen(2)))


def windows(padded: torch.Tensor, h: int, w: int) -> list[torch.Tensor]:
    rows, cols = padded.shape[-2:]
    return [
        padded[..., i : i + h, j : j + w] for i in range(rows - h + 1) for j in range(cols - w + 1)
    ]


def test_crop_is_a_shifted_copy() -> None:
    x = distinct((8, 2, 6, 5))
    out = augment(x, "crop", gen(0), pad=2)
    for sample, result in zip(x, out, strict=True):
        padded = F.pad(sample, (2, 2, 2, 2))
        assert sum(torch.equal(result, win) for win in windows(padded, 6, 5)) == 1
    assert not torch.equal(out, x)


def test_crop_flip_flips_images_only() -> None:
    x = distinct((64, 1, 5, 5))
    out = augment(x, "crop-flip", gen(0), pad=1)
    flipped = 0
    for sample, result in zip(x, out, strict=True):
        wins = windows(F.pad(sample, (1, 1, 1, 1)), 5, 5)
        plain = any(torch.equal(result, win) for win in wins)
        mirrored = any(torch.equal(result, win.flip(-1)) for win in wins)
        assert plain != mirrored
        flipped += mirrored
    assert 16 < flipped < 48
    signals = distinct((64, 2, 10))
    shifted = augment(signals, "crop-flip", gen(0), pad=3)
    for sample, result in zip(signals, shifted, strict=True):
        padded = F.pad(sample, (3, 3)).unsqueeze(1)
        assert any(torch.equal(result.unsqueeze(1), win) for win in windows(padded, 1, 10))


def test_augment_rejects_bad_arguments() -> None:
    with pytest.raises(DataError, match="valid: none, crop, crop-flip"):
        augment(torch.zeros(2, 1, 4, 4), "rotate", gen(0))
    with pytest.raises(DataError, match="needs"):
        augment(torch.zeros(2, 4), "crop", gen(0))


# --- real data --------------------------------------------------------------------------

REAL = os.environ.get("MINARCH_DATA_DIR")


@pytest.mark.slow
@pytest.mark.real_data("mnist", "fashion-mnist")
@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_real_idx_datasets(name: str) -> None:
    data_dir = Path(REAL)
    checks = check_dataset(name, data_dir)
    assert len(checks) == 4 and all(c.present and c.checksum_ok for c in checks)
    ds = load_dataset(name, data_dir, download=False)
    assert ds.train_x.shape == (60000, 1, 28, 28) and ds.val_x.shape == (10000, 1, 28, 28)
    assert ds.info.train_size == 60000
    assert ds.train_x.dtype == torch.uint8 and ds.train_y.dtype == torch.int64
    assert torch.bincount(ds.val_y).numel() == 10 and ds.info.num_classes == 10
    if name == "mnist":
        assert torch.bincount(ds.train_y)[:2].tolist() == [5923, 6742]
        assert ds.mean.item() == pytest.approx(0.13066 * 255, abs=1e-2)  # the usual 0.1307
    else:
        assert torch.bincount(ds.train_y).tolist() == [6000] * 10
