"""``--set PATH=VALUE``: a study's values changed without editing its file, as Hydra does."""

from __future__ import annotations

import pytest
import yaml

import minarch
from minarch.errors import SpecError
from minarch.spec import load_study
from minarch.store import open_store
from tests.cli import TINY_STUDY
from tests.cli import minarch as minarch_cli


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_STUDY)
    return path


def test_values_are_yaml_and_paths_reach_into_lists(tiny):
    study, text = load_study(
        tiny,
        [
            "training.epochs=5",
            "seeds=[0, 4]",
            "models.0.width=[8,16,64]",
            "training.weight_decay=1e-4",
            "prune.unstructured.sparsity=[0.5]",
            "training.lr={log10: {start: -3, stop: -2, step: 1}}",
        ],
    )
    assert study.training.epochs == 5 and study.seed_list() == [0, 4]
    assert study.models[0]["width"] == [8, 16, 64]
    assert study.training.weight_decay == 1e-4  # a number, though YAML 1.1 reads a string
    assert study.prune.unstructured.sparsity == (0.5,)
    assert minarch.plan(tiny, overrides=["training.lr=[0.1]"]).study.training.lr == [0.1]
    stored = yaml.safe_load(text)
    assert stored["training"]["epochs"] == 5 and stored["name"] == "tiny"
    assert text.startswith("# override: training.epochs=5\n")


def test_a_changed_configuration_is_a_new_run_and_the_rest_keep_their_ids(tiny):
    ids = {r.config.id for r in minarch.plan(tiny).runs}
    assert {r.config.id for r in minarch.plan(tiny, overrides=["training.epochs=3"]).runs} == ids
    longer = {r.config.id for r in minarch.plan(tiny, overrides=["training.epochs=4"]).runs}
    assert not longer & ids and len(longer) == len(ids)
    one_seed = minarch.plan(tiny, overrides=["seeds=[0]"]).runs
    assert {r.config.id for r in one_seed} < ids and len(one_seed) == 2


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("epochs", "override 'epochs': expected PATH=VALUE"),
        ("training..lr=1", "override 'training..lr=1': expected PATH=VALUE"),
        (
            "models.3.width=4",
            "override 'models.3.width=4': models.3: expected a list index below 1",
        ),
        (
            "training.lr.log10=1",
            "override 'training.lr.log10=1': training.lr is 0.01, not a mapping",
        ),
        ("seeds=[0, 1", "override 'seeds=[0, 1': the value is not valid YAML"),
        (
            "training.epochs=three",
            "with training.epochs=three: training.epochs: expected an integer",
        ),
        ("training.epoch=3", "with training.epoch=3: training.epoch: unknown field"),
    ],
)
def test_errors_name_the_override(tiny, override, message):
    with pytest.raises(SpecError) as error:
        load_study(tiny, [override])
    assert message in str(error.value)


def test_plan_shows_the_effect_and_run_stores_the_overridden_study(tiny, tmp_path):
    planned = minarch_cli(
        "plan", "tiny.yaml", "--set", "seeds=[0]", "--set", "training.epochs=1", cwd=tmp_path
    )
    assert planned.returncode == 0, planned.stderr
    assert "2 runs in 2 packs, 0 done" in planned.stdout
    assert "with seeds=[0], training.epochs=1" in planned.stdout
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    args = ("tiny.yaml", "--set", "seeds=[0]", "--set", "training.epochs=1", "--db", db)
    options = ("--device", "cpu", "--workers", "1", "--no-report")  # the report is not read
    trained = minarch_cli("run", *args, *options, cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    with open_store(db) as store:
        stored = yaml.safe_load(store.study_spec("tiny"))
        runs = store.runs(study="tiny")
    assert stored["seeds"] == [0] and stored["training"]["epochs"] == 1
    assert len(runs) == 2 and {r.config["training"]["epochs"] for r in runs} == {1}
    bad = minarch_cli("run", "tiny.yaml", "--set", "seeds=zero", "--db", db, cwd=tmp_path)
    assert bad.returncode == 2 and "with seeds=zero: seeds" in bad.stderr
