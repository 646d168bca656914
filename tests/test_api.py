"""The Python API: the CLI's verbs as functions returning DataFrames."""

from __future__ import annotations

import pytest
import torch
from rich.console import Console

import minarch
from minarch import api
from minarch.data import dataset_info
from minarch.execute import InProcessExecutor, WorkerExecutor, artifacts_dir, resolve_device
from minarch.models import build_model
from minarch.store import open_store
from tests.cli import TINY_STUDY


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """The tiny study trained once through the API; shared by the tests below. In this
    process: worker processes take longer to start than these runs to train."""
    folder = tmp_path_factory.mktemp("api")
    (folder / "tiny.yaml").write_text(TINY_STUDY + "analysis: {gap: 0.05, bootstrap: 50}\n")
    db = f"sqlite:///{folder / 'runs.db'}"
    outcome = minarch.run(
        folder / "tiny.yaml",
        db=db,
        out=folder / "reports",
        device="cpu",
        workers=1,
        console=Console(quiet=True),
    )
    return folder, db, outcome


def test_load_and_plan_without_a_store(tmp_path):
    study = minarch.load_study("quickstart")
    assert study.name == "quickstart" and study.seed_list() == [0, 1, 2]
    plan = minarch.plan("quickstart")
    assert len(plan.runs) == 90 and len(plan.packs()) == 30
    assert all(run.params > 0 and run.flops > 0 for run in plan.runs)


def test_run_returns_summary_and_report(finished):
    folder, _, outcome = finished
    assert outcome.study == "tiny" and outcome.summary.trained == {"done": 4}
    assert outcome.report == folder / "reports" / "tiny" / "report.html"
    assert outcome.report.is_file()


def test_runs_epochs_status_frames(finished):
    _, db, _ = finished
    runs = minarch.runs(db=db, study="tiny")
    assert len(runs) == 4 and (runs["state"] == "done").all()
    assert sorted(runs["config.model.width"].unique()) == [4, 32]
    assert (runs["best_val_acc"] >= runs["final_val_acc"] - 1e-12).all()
    epochs = minarch.epochs(db=db, study="tiny")
    assert len(epochs) == 4 * 3 and set(epochs["epoch"]) == {1, 2, 3}
    status = minarch.status(db=db).set_index("study")
    assert status.loc["tiny", "done"] == 4


def test_analyze_uses_the_thresholds_of_the_study_file(finished):
    _, db, _ = finished
    result = minarch.analyze(db=db)["tiny"]
    assert result.thresholds.gap == 0.05 and result.thresholds.bootstrap == 50
    assert len(result.runs) == 4
    assert set(result.runs["regime"]) <= {"unstable", "learning", "overfitting"}
    assert result.runs["rule"].notna().all()
    assert list(result.minimal["family"]) == ["mlp"]
    with pytest.raises(minarch.MinarchError, match="study='nope': no such study"):
        minarch.analyze(db=db, study="nope")


def test_tables_say_when_selections_were_made_on_the_test_split(finished):
    _, db, _ = finished
    notes = minarch.table("minimal", db=db).attrs["notes"]
    assert list(notes) == ["tiny"] and "digits validated on the test split" in notes["tiny"]


def test_saved_weights_load_safely_into_the_same_architecture(finished):
    _, db, _ = finished
    with open_store(db) as store:
        run = store.runs(study="tiny")[0]
        (artifact,) = store.artifacts(run.id)
    state = torch.load(artifact.path, weights_only=True)
    info = dataset_info(run.dataset)
    model = build_model(
        run.family, {"width": run.config["model"]["width"]}, info.input_shape, info.num_classes
    )
    model.load_state_dict(state)  # strict: same keys and shapes
    assert artifact.size > 0 and len(artifact.sha256) == 64


def test_rerun_trains_nothing_and_starts_no_trainer(finished, monkeypatch):
    def start(*args, **kwargs):
        raise AssertionError("a trainer started with nothing to train")

    monkeypatch.setattr(WorkerExecutor, "train", start)
    monkeypatch.setattr(InProcessExecutor, "train", start)
    folder, db, _ = finished
    again = minarch.run(
        folder / "tiny.yaml", db=db, device="cpu", report=False, console=Console(quiet=True)
    )
    assert again.summary.trained == {} and again.report is None


@pytest.mark.parametrize(
    "verb",
    [minarch.status, minarch.runs, minarch.epochs, minarch.analyze, minarch.compression],
    ids=lambda verb: verb.__name__,
)
def test_reading_a_missing_store_is_an_error_that_creates_nothing(verb, tmp_path):
    missing = tmp_path / "runs.db"
    with pytest.raises(minarch.MinarchError, match=f"no run store at {missing}") as error:
        verb(db=f"sqlite:///{missing}")
    assert "--" not in str(error.value)  # the API's words name no CLI flag
    assert list(tmp_path.iterdir()) == []


def test_reading_a_missing_store_through_every_other_reader(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MINARCH_DB", raising=False)
    with pytest.raises(minarch.MinarchError, match="no run store at"):
        minarch.table("risk")  # the default store, ./minarch.db
    with pytest.raises(minarch.MinarchError, match="no run store at"):
        api.report(out=tmp_path / "reports")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("table", "lacking"),
    [
        ("risk", "no hyperparameter-space runs"),
        ("ellipses", "no hyperparameter-space runs"),
        ("redundancy", "no pruning results"),
        ("min-bits", "no quantization results"),
        ("int8", "no real int8 results"),
    ],
)
def test_a_table_the_study_has_no_runs_for_is_an_error(finished, table, lacking):
    _, db, _ = finished
    with pytest.raises(minarch.MinarchError, match=f"study 'tiny' has {lacking}") as error:
        minarch.table(table, db=db, study="tiny")
    assert "--" not in str(error.value)
    with pytest.raises(minarch.MinarchError, match=f"no study in the store has {lacking[3:]}"):
        minarch.table(table, db=db)


def test_compression_of_a_study_without_any_is_an_error(finished):
    _, db, _ = finished
    with pytest.raises(minarch.MinarchError, match="study 'tiny' has no compression results"):
        minarch.compression(db=db, study="tiny")


def test_datasets_frame_lists_every_registered_dataset(tmp_path):
    frame = minarch.datasets(data_dir=tmp_path)
    assert {"digits", "mnist1d", "mnist", "cifar10"} <= set(frame["dataset"])
    assert frame.set_index("dataset").loc["mnist", "status"] == "missing"
    assert frame.set_index("dataset").loc["digits", "status"] == "generated"


def test_device_and_artifact_resolution(monkeypatch):
    assert resolve_device("cpu").type == "cpu"
    with pytest.raises(minarch.MinarchError, match="device="):
        resolve_device("tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(minarch.MinarchError, match="no CUDA device"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"
    monkeypatch.delenv("MINARCH_ARTIFACTS", raising=False)
    assert str(artifacts_dir("sqlite:////data/runs.db")) == "/data/minarch-artifacts"


@pytest.mark.slow
@pytest.mark.long(30)
def test_workers_split_packs_and_train_every_run_once(tmp_path):
    text = TINY_STUDY.replace("lr: 0.01", "lr: [0.1, 0.01]").replace("name: tiny", "name: two")
    (tmp_path / "two.yaml").write_text(text)
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    outcome = minarch.run(
        tmp_path / "two.yaml",
        db=db,
        device="cpu",
        workers=2,
        report=False,
        console=Console(quiet=True),
    )
    assert outcome.summary.trained == {"done": 8}
    runs = minarch.runs(db=db, study="two")
    assert len(runs) == runs["run_id"].nunique() == 8 and (runs["state"] == "done").all()
    # Packs of 4 members (lr x seeds) cut in two for the two workers: an MLP trains
    # exactly, so each half of 2 trains plain, with the bits fused gives the whole pack.
    assert set(runs["engine"]) == {"plain"}


def test_workers_must_be_positive(tmp_path):
    with pytest.raises(minarch.MinarchError, match="workers="):
        minarch.run("quickstart", db=f"sqlite:///{tmp_path / 'x.db'}", workers=0)
