"""Datasets that need no download: scikit-learn's digits and generated MNIST-1D."""

from __future__ import annotations

import os
import random
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch

from minarch.data.dataset import Dataset, build_dataset
from minarch.data.registry import DatasetInfo, LoadRequest, register
from minarch.errors import DataError

_DIGITS_SEED = 0
_DIGITS_TEST_FRACTION = 0.2
_MNIST1D_CACHE = "mnist1d-default.npz"
_MNIST1D_KEYS = ("x", "y", "x_test", "y_test")


@register(
    DatasetInfo(
        "digits",
        (1, 8, 8),
        10,
        "1797 handwritten digits, 8x8, values 0-16 (UCI optdigits via scikit-learn load_digits)",
        difficulty=10,
    )
)
def load_digits(req: LoadRequest) -> Dataset:
    """A fixed stratified 80/20 split, since the data ships without one."""
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    bunch = sklearn_digits()
    x = bunch.data.reshape(-1, 1, 8, 8).astype(np.uint8)
    y = bunch.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=_DIGITS_TEST_FRACTION, stratify=y, random_state=_DIGITS_SEED
    )
    tensors = (torch.from_numpy(a) for a in (x_train, y_train, x_test, y_test))
    return build_dataset(req.info, *tensors)


@register(
    DatasetInfo(
        "mnist1d",
        (1, 40),
        10,
        "MNIST-1D, generated 1-D digit signals of length 40 (Greydanus, arXiv:2011.14439)",
        difficulty=20,
    )
)
def load_mnist1d(req: LoadRequest) -> Dataset:
    """Generate the default MNIST-1D once and reuse the cached arrays after."""
    cache = req.root / _MNIST1D_CACHE
    arrays = _read_cache(cache) if cache.is_file() else _generate_into(cache)
    x, y, x_test, y_test = (torch.from_numpy(arrays[k]) for k in _MNIST1D_KEYS)
    return build_dataset(req.info, x.unsqueeze(1), y, x_test.unsqueeze(1), y_test)


def _read_cache(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in _MNIST1D_KEYS}
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(
            f"{path}: unreadable MNIST-1D cache ({exc}); delete it to regenerate"
        ) from None


def _generate_into(path: Path) -> dict[str, np.ndarray]:
    from mnist1d.data import get_dataset_args, make_dataset

    # make_dataset reseeds the global random and NumPy generators; put them back.
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        data = make_dataset(get_dataset_args())
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    arrays = {
        "x": data["x"].astype(np.float32),
        "y": data["y"].astype(np.int64),
        "x_test": data["x_test"].astype(np.float32),
        "y_test": data["y_test"].astype(np.int64),
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
    except OSError as exc:
        raise DataError(
            f"cannot cache MNIST-1D in {path.parent} ({exc}); "
            "set MINARCH_DATA_DIR to a writable folder"
        ) from None
    return arrays
