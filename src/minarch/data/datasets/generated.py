"""Datasets that need no download: scikit-learn's digits and generated MNIST-1D."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

import numpy as np

from minarch.data.registry import DatasetInfo, LoadRequest, register

if TYPE_CHECKING:
    from minarch.data.dataset import Dataset

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
        title="Digits (8x8)",
        difficulty=10,
        train_size=1_437,
    )
)
def load_digits(req: LoadRequest) -> Dataset:
    """A fixed stratified 80/20 split, since the data ships without one."""
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    from minarch.data.dataset import build_dataset

    bunch = sklearn_digits()
    x = bunch.data.reshape(-1, 1, 8, 8).astype(np.uint8)
    y = bunch.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=_DIGITS_TEST_FRACTION, stratify=y, random_state=_DIGITS_SEED
    )
    return build_dataset(req.info, x_train, y_train, x_test, y_test)


@register(
    DatasetInfo(
        "mnist1d",
        (1, 40),
        10,
        "MNIST-1D, generated 1-D digit signals of length 40 (Greydanus, arXiv:2011.14439)",
        title="MNIST-1D",
        difficulty=20,
        train_size=4_000,
    )
)
def load_mnist1d(req: LoadRequest) -> Dataset:
    """Generate the default MNIST-1D once and reuse the cached arrays after."""
    from minarch.data.cache import find, read_arrays, store_arrays
    from minarch.data.dataset import build_dataset

    cached = find(_MNIST1D_CACHE, req.root)
    if cached is not None:
        arrays = read_arrays(cached, _MNIST1D_KEYS)
    else:
        arrays = _generate()
        store_arrays(_MNIST1D_CACHE, req.root, arrays)
    x, y, x_test, y_test = (arrays[k] for k in _MNIST1D_KEYS)
    return build_dataset(req.info, x[:, None], y, x_test[:, None], y_test)


def _generate() -> dict[str, np.ndarray]:
    from mnist1d.data import get_dataset_args, make_dataset

    # make_dataset reseeds the global random and NumPy generators; put them back.
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        data = make_dataset(get_dataset_args())
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    return {
        "x": data["x"].astype(np.float32),
        "y": data["y"].astype(np.int64),
        "x_test": data["x_test"].astype(np.float32),
        "y_test": data["y_test"].astype(np.int64),
    }
