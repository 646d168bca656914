"""Study files: schema, error messages that name the field, expansion, run identity."""

from __future__ import annotations

import pytest

from minarch.errors import SpecError
from minarch.spec import builtin_studies, expand, parse_study
from minarch.spec.schema import LogGrid

BASE = """
name: demo
datasets: [digits]
models:
  - family: mlp
    width: [4, 16]
    depth: [1, 2]
training:
  lr: [0.1, 0.01]
  weight_decay: 0.0001
  epochs: 3
seeds: 2
"""


def study(text: str = BASE):
    return parse_study(text, "demo.yaml")


def error_of(text: str) -> str:
    with pytest.raises(SpecError) as info:
        expand(study(text))
    return str(info.value)


def test_expansion_is_the_product_of_every_grid():
    runs = expand(study())
    assert len(runs) == 2 * 2 * 2 * 2  # width × depth × lr × seeds
    assert len({r.id for r in runs}) == len(runs)
    assert len({r.pack_key for r in runs}) == 4  # one pack per architecture


def test_run_ids_are_pinned():
    """Changing these ids orphans every stored run: only do it with a migration."""
    runs = expand(study())
    first = runs[0]
    assert first.dump(exclude_defaults=True) == {
        "dataset": {"name": "digits"},
        "model": {"family": "mlp", "width": 4},
        "training": {"epochs": 3},
        "seed": 0,
    }
    assert first.id == "401359b50fa711c7"
    assert first.pack_key == "7f753f0aa5d239cf"


def test_ids_ignore_key_order_formatting_and_explicit_defaults():
    reordered = """
seeds: [0, 1]
training: {epochs: 3, weight_decay: 1.0e-4, lr: [1e-1, 0.010], momentum: 0.9, optimizer: sgd}
models: [{depth: [1, 2], width: [4, 16], family: mlp, activation: relu}]
datasets: [{name: digits, validation: test}]
name: demo
"""
    assert {r.id for r in expand(study(reordered))} == {r.id for r in expand(study())}


def test_pack_members_differ_only_in_lr_wd_and_seed():
    runs = expand(study())
    packs: dict[str, set] = {}
    for run in runs:
        packs.setdefault(run.pack_key, set()).add(run.model.config)
    assert all(len(configs) == 1 for configs in packs.values())


def test_log10_grid_is_inclusive_and_exact():
    assert LogGrid(start=-3, stop=-1, step=0.5).values() == [
        0.001,
        10**-2.5,
        0.01,
        10**-1.5,
        0.1,
    ]
    runs = expand(
        study(BASE.replace("lr: [0.1, 0.01]", "lr: {log10: {start: -2, stop: -1, step: 0.5}}"))
    )
    assert sorted({r.training.lr for r in runs}) == [0.01, 10**-1.5, 0.1]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("width: [4, 16]", "width: [4, -4]"), "models[0].width: expected a number > 0, got -4"),
        (("width: [4, 16]", "width: []"), "models[0].width: empty grid"),
        (("family: mlp", "family: transformer"), "models[0].family: expected one of"),
        (("depth: [1, 2]", "dpeth: 2"), "models[0].dpeth: unknown field for family mlp"),
        (("[digits]", "[digits, imagenet22k]"), "datasets[1]: unknown dataset 'imagenet22k'"),
        (("[digits]", "[]"), "datasets: expected a non-empty list"),
        (("epochs: 3", "epochs: ten"), "training.epochs: expected an integer, got 'ten'"),
        (("lr: [0.1, 0.01]", "lr: [0.1, -1]"), "training.lr[1]: expected a number > 0, got -1"),
        (("lr: [0.1, 0.01]", "lr: []"), "training.lr: expected a non-empty list"),
        (("seeds: 2", "seeds: []"), "seeds: expected a non-empty list"),
        (
            ("epochs: 3", "epochs: 3\n  optimizer: adam"),
            "training.optimizer: expected one of 'sgd' or 'adamw'",
        ),
        (("epochs: 3", "epochs: 3\n  lr_decay: 2"), "training.lr_decay: unknown field"),
        (("name: demo", "name: demo study!"), "name: use letters, digits"),
    ],
)
def test_errors_name_the_field(change, expected):
    old, new = change
    assert old in BASE
    message = error_of(BASE.replace(old, new))
    assert message.startswith("demo.yaml: " + expected) or message.startswith(expected), message
    assert "\n" not in message


def test_second_model_entry_is_named_by_index():
    text = BASE.replace(
        "    depth: [1, 2]\n", "    depth: [1, 2]\n  - family: cnn\n    channels: -4\n"
    )
    assert error_of(text) == "models[1].channels: expected a number > 0, got -4"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: [unclosed\n", "demo.yaml: invalid YAML at line 2"),
        ("- just\n- a list\n", "demo.yaml: a study file must be a YAML mapping"),
        ("name: x\nmodels: [{family: mlp}]\n", "demo.yaml: datasets: required field is missing"),
    ],
)
def test_malformed_files(text, expected):
    with pytest.raises(SpecError) as info:
        study(text)
    assert str(info.value).startswith(expected), str(info.value)


def test_quickstart_is_built_in():
    assert "quickstart" in builtin_studies()
