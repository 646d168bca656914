"""Study files: schema, error messages that name the field, expansion, run identity."""

from __future__ import annotations

import json

import pydantic
import pytest

from minarch.data import augment
from minarch.errors import SpecError
from minarch.spec import builtin_studies, expand, load, load_study, parse_study
from minarch.spec.count import count_runs
from minarch.spec.derive import derived_runs
from minarch.spec.schema import AUGMENTATIONS, LogGrid
from minarch.train import Recipe

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


def test_precision_is_in_the_id_only_when_not_fp32():
    pinned = {r.id for r in expand(study())}
    fp32 = BASE.replace("  epochs: 3", "  epochs: 3\n  precision: fp32")
    assert {r.id for r in expand(study(fp32))} == pinned
    for other in ("tf32", "bf16"):
        runs = expand(study(BASE.replace("  epochs: 3", f"  epochs: 3\n  precision: {other}")))
        assert not {r.id for r in runs} & pinned
        assert {r.training.precision for r in runs} == {other}
    assert "precision" in error_of(BASE.replace("  epochs: 3", "  epochs: 3\n  precision: fp16"))


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


# --- hostile input: bounded work, validation gaps -----------------------------------------

EVERY_PIPELINE = """
name: every
datasets: [digits]
models: [{family: mlp, width: [4, 8], depth: [1, 2]}, {family: cnn, channels: 4}]
training: {lr: [0.1, 0.01, 0.001], weight_decay: {log10: {start: -5, stop: -3, step: 1}}}
seeds: [0, 3]
prune:
  structured: {scope: [uniform, global], flops_remaining: [0.5, 0.25]}
  unstructured: {scope: [global, layer], sparsity: [0.5, 0.9, 0.95]}
  pipelines: [oneshot, finetune, retrain, imp]
  retrain: {over: OVER}
  imp: {rounds: 2}
quantize:
  bits: [8, 4]
  granularity: [channel, tensor]
  activations: true
  int8: true
  with_pruning: true
  qat: {bits: [8, 4, 2]}
"""


@pytest.mark.parametrize(
    "text",
    [
        BASE,
        EVERY_PIPELINE.replace("OVER", "parent"),
        EVERY_PIPELINE.replace("OVER", "grid"),
        *(builtin_studies()),
    ],
)
def test_run_count_is_exact_without_expanding(text):
    spec = study(text) if "\n" in text else load_study(text)[0]
    base = expand(spec)
    assert count_runs(spec) == len(base) + len(derived_runs(spec, base))
    extended = expand(spec, extra_lr=[0.5], extra_wd=[0.5, 0.6])
    assert count_runs(spec, extra_lr=1, extra_wd=2) == len(extended) + len(
        derived_runs(spec, extended)
    )


def test_huge_grids_are_counted_not_listed():
    grid = LogGrid(start=-3, stop=-1, step=1e-9)
    assert grid.size() == 2_000_000_000  # (stop - start) / step is just below 2e9 in floats
    huge = BASE.replace("lr: [0.1, 0.01]", "lr: {log10: {start: -3, stop: -1, step: 1.0e-9}}")
    seeds = huge.replace("seeds: 2", "seeds: 1000000000")
    assert count_runs(study(seeds)) == 4 * 2_000_000_000 * 1_000_000_000


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("seeds: 2", "seeds: [9223372036854775808]"), "seeds[0]: expected a number <= 922337"),
        (("seeds: 2", "seeds: [1.0e+23]"), "seeds[0]: "),
        (("lr: [0.1, 0.01]", "lr: .inf"), "training.lr: expected a finite number, got inf"),
        (("lr: [0.1, 0.01]", "lr: [0.1, .nan]"), "training.lr[1]: expected a finite number"),
        (("weight_decay: 0.0001", "weight_decay: .inf"), "training.weight_decay: expected a fin"),
        (("name: demo", "name: " + "a" * 256), "name: a study name has at most 255 characters"),
        (("width: [4, 16]", "width: true"), "models[0].width: expected a number, got True"),
        (("width: [4, 16]", "width: [4, true]"), "models[0].width: expected a number, got True"),
        (("epochs: 3", "epochs: true"), "training.epochs: expected a number, not true or false"),
        (("seeds: 2", "seeds: [0, false]"), "seeds: expected a number, not true or false"),
        (("name: demo", 'name: "nl\\n"'), "name: use letters, digits"),
        (
            ("lr: [0.1, 0.01]", "lr: {log10: {start: -1, stop: 400, step: 1}}"),
            "training.lr.log10: exponents must lie between -300 and 300",
        ),
        (
            ("lr: [0.1, 0.01]", "lr: {log10: {start: -300, stop: 300, step: 1.0e-320}}"),
            "training.lr.log10: step is too small",
        ),
    ],
)
def test_hostile_values_are_refused_with_the_field_named(change, expected):
    old, new = change
    assert old in BASE
    message = error_of(BASE.replace(old, new))
    assert message.startswith("demo.yaml: " + expected) or message.startswith(expected), message
    assert "\n" not in message and len(message) < 300


def test_infinite_model_size_is_refused():
    text = BASE.replace("family: mlp", "family: resnet_cifar\n    width_multiplier: .inf")
    text = text.replace("    width: [4, 16]\n    depth: [1, 2]\n", "    depth: 20\n")
    assert error_of(text) == "models[0].width_multiplier: expected a finite number, got inf"


def alias_bomb(levels: int) -> str:
    """Lists of ten aliases of the list before, ``levels`` deep: lr stands for 10**levels values."""
    anchors = ["&a0 [" + ", ".join(["0.1"] * 10) + "]"]
    anchors += [f"&a{k} [" + ", ".join([f"*a{k - 1}"] * 10) + "]" for k in range(1, levels)]
    training = "training:\n  lr: [0.1, 0.01]\n  weight_decay: 0.0001\n  epochs: 3\n"
    bomb = f"description: [{', '.join(anchors)}]\ntraining: {{lr: [*a{levels - 1}]}}\n"
    return BASE.replace(training, bomb)


def test_yaml_alias_bomb_is_refused_before_it_is_built():
    message = str(pytest.raises(SpecError, study, alias_bomb(8)).value)
    assert message == "demo.yaml: more than 100,000 values once YAML aliases are expanded"
    recursive = BASE + "loop: &a [1, *a]\n"
    assert "once YAML aliases are expanded" in str(pytest.raises(SpecError, study, recursive).value)
    shared = BASE.replace(
        "  - family: mlp", "  - &m {family: mlp, width: 8}\n  - *m\n  - family: mlp"
    )
    assert len(expand(study(shared))) == len(expand(study())) + 2 * 2  # aliases still work


def test_bad_values_are_shown_as_short_excerpts(monkeypatch):
    # let a bomb through to validation (raising=False: the landed code has no such limit)
    monkeypatch.setattr(load, "MAX_STUDY_VALUES", 10**12, raising=False)
    message = str(pytest.raises(SpecError, study, alias_bomb(7)).value)
    assert message.startswith("demo.yaml: training.lr"), message
    assert len(message) < 200 and "..." in message


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("seeds: 2", "seeds: 2\n" + "x" * 1000 + ": 1"),  # YAML keys stop at 1024 characters
        ("depth: [1, 2]", "depth: [1, 2]\n    " + "x" * 1000 + ": 1"),
        ("[digits]", "[" + "d" * 10_000 + "]"),
        ("epochs: 3", "epochs: -" + "9" * 4000),
        ("epochs: 3", "epochs: " + "9" * 10_000),  # more digits than Python converts
        ("epochs: 3", "epochs: 2026-13-01"),
    ],
)
def test_long_names_and_values_are_shown_as_short_excerpts(old, new):
    message = error_of(BASE.replace(old, new))
    assert len(message) < 200 and "\n" not in message, message


def test_oversized_and_deeply_nested_files_are_refused(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text(BASE.replace("lr: [0.1, 0.01]", "lr: [" + "0.1, " * 400_000 + "0.1]"))
    with pytest.raises(SpecError, match="longer than a study file may be"):
        load_study(path)
    with pytest.raises(SpecError, match="invalid YAML"):
        study(BASE + "deep: " + "[" * 5000 + "]" * 5000 + "\n")


# Recipes at and beyond every limit: where the schema and the trainer once disagreed
# (gamma above 1, a milestone at 1, repeated milestones) and the plain ones.
RECIPES = [
    {}, {"gamma": 1.0}, {"gamma": 2.0}, {"gamma": 0.0}, {"milestones": [0.5, 1.0]},
    {"milestones": [0.5, 0.5]}, {"milestones": [0.75, 0.5]}, {"milestones": []},
    {"momentum": 0.0}, {"momentum": 1.0}, {"batch_size": 0}, {"epochs": 0},
    {"warmup_epochs": -0.5}, {"warmup_epochs": 2.5}, {"label_smoothing": 0.999},
    {"label_smoothing": 1.0}, {"optimizer": "adamw"}, {"optimizer": "rmsprop"},
    {"schedule": "cosine"}, {"schedule": "linear"}, {"augmentation": "crop-flip"},
    {"augmentation": "crop"}, {"augmentation": "mixup"}, {"unknown": 1},
]  # fmt: skip


@pytest.mark.parametrize("fields", RECIPES, ids=str)
def test_a_study_file_and_the_trainer_accept_the_same_recipes(fields):
    """One declaration: a recipe is valid in a study file exactly when the trainer takes it."""
    training = "".join(f"  {key}: {json.dumps(value)}\n" for key, value in fields.items())
    text = BASE.replace(
        "  epochs: 3\n", training if "epochs" in fields else "  epochs: 3\n" + training
    )
    try:
        Recipe(**fields)
        trainer_accepts = True
    except pydantic.ValidationError:
        trainer_accepts = False
    try:
        study(text)
        study_accepts = True
    except SpecError:
        study_accepts = False
    assert study_accepts == trainer_accepts


def test_every_augmentation_a_study_may_name_is_implemented():
    assert AUGMENTATIONS == augment.IMPLEMENTED
