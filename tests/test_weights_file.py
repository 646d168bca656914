"""A stored weights file replaced together with its SHA-256: one line, never unsafe loading."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from minarch.errors import MinarchError
from minarch.execute.compress import load_trained
from minarch.models import build_model
from minarch.prune import load_pruned, read_weights
from minarch.spec import expand, parse_study
from tests.synthetic import class_patterns

STUDY = """
name: weights
datasets: [digits]
models: [{family: mlp, width: 8}]
seeds: 1
"""


class Payload:
    """A pickled object that would run code if loaded unsafely."""

    def __reduce__(self):
        return (os.getcwd, ())


def _replaced(path: Path, content: object) -> SimpleNamespace:
    """A store whose only run's weights are ``path``, its SHA-256 rewritten to match."""
    torch.save(content, path)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    record = SimpleNamespace(kind="weights", path=str(path), sha256=sha)
    return SimpleNamespace(artifacts=lambda run_id: [record])


@pytest.mark.parametrize("content", [Payload(), {"a": Payload()}], ids=["object", "in-dict"])
def test_a_foreign_pickle_is_not_a_minarch_weights_file(tmp_path, content):
    path = tmp_path / "weights.pt"
    store = _replaced(path, content)
    config = expand(parse_study(STUDY))[0]
    data = class_patterns((1, 8, 8), 10, 20, 10, noise=10)
    for load in (
        lambda: read_weights(path),
        lambda: load_pruned(path),
        lambda: load_trained(config, store, data),
    ):
        with pytest.raises(MinarchError) as info:
            load()
        message = str(info.value)
        assert message == f"{path}: not a minarch weights file"
        assert info.value.__cause__ is None and info.value.__suppress_context__


def test_garbage_and_another_models_weights_are_one_line(tmp_path):
    config = expand(parse_study(STUDY))[0]
    data = class_patterns((1, 8, 8), 10, 20, 10, noise=10)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not weights at all")
    with pytest.raises(MinarchError, match="not a minarch weights file"):
        read_weights(garbage)
    other = build_model("mlp", {"width": 16}, (1, 8, 8), 10).state_dict()
    store = _replaced(tmp_path / "other.pt", other)
    with pytest.raises(
        MinarchError, match=r"other\.pt holds another model; train it again: `minarch rm"
    ):
        load_trained(config, store, data)
