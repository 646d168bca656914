"""Deleting runs: ``Store.delete_runs``, ``minarch.remove``, ``rm`` and ``run --rerun-failed``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

import minarch
from minarch import cli
from minarch.errors import StoreError
from minarch.store import Store, open_store
from tests.cli import TINY_STUDY, error_lines
from tests.cli import minarch as minarch_cli
from tests.test_store import make_run, store, url  # noqa: F401  (fixtures)

BASE = [make_run(i) for i in range(3)]
CHILD = dataclasses.replace(make_run(7), parent_id=BASE[0].id, variant="finetune")
GRANDCHILD = dataclasses.replace(make_run(8), parent_id=CHILD.id, variant="finetune")


@pytest.fixture
def filled(store: Store, tmp_path) -> Store:  # noqa: F811
    """Study alpha: three base runs, a child of the first and its child; run 2 also in beta."""
    runs = [*BASE, CHILD, GRANDCHILD]
    store.register_study("alpha", "name: alpha\n", runs)
    store.register_study("beta", "name: beta\n", [BASE[2]])
    for run in runs:
        store.record_epoch(run.id, 1, {"val_acc": 0.5})
        store.record_evaluation(run.id, "k", {"kind": "prune"}, {"val_acc": 0.4})
        weights = tmp_path / f"{run.id}.pt"
        weights.write_bytes(b"w")
        store.add_artifact(run.id, "weights", str(weights), "0" * 64, 1)
    return store


def _ids(opened: Store, study: str | None = None) -> set[str]:
    return {r.id for r in opened.runs(study=study)}


def test_a_deleted_run_goes_with_its_curves_evaluations_and_artifacts(filled: Store):
    artifacts = filled.delete_runs("alpha", [BASE[1].id])
    assert [a.run_id for a in artifacts] == [BASE[1].id]
    assert BASE[1].id not in _ids(filled)
    assert BASE[1].id not in set(filled.epochs_frame()["run_id"])
    assert BASE[1].id not in {e.run_id for e in filled.evaluations()}
    assert filled.artifacts(BASE[1].id) == []
    assert len(filled.runs(study="alpha")) == 4


def test_derived_runs_must_be_deleted_with_their_parent(filled: Store):
    with pytest.raises(StoreError, match=f"runs {CHILD.id} derive from the runs to delete"):
        filled.delete_runs("alpha", [BASE[0].id])
    with pytest.raises(StoreError, match=GRANDCHILD.id):
        filled.delete_runs("alpha", [BASE[0].id, CHILD.id])
    assert len(filled.runs(study="alpha")) == 5  # nothing changed
    filled.delete_runs("alpha", [GRANDCHILD.id, BASE[0].id, CHILD.id])
    assert _ids(filled, "alpha") == {BASE[1].id, BASE[2].id}


def test_a_run_of_another_study_only_leaves_this_one(filled: Store):
    assert filled.delete_runs("alpha", [BASE[2].id]) == []  # its weights serve beta
    assert BASE[2].id not in _ids(filled, "alpha") and _ids(filled, "beta") == {BASE[2].id}
    assert len(filled.epochs_frame(study="beta")) == 1


def test_a_study_without_runs_left_is_deleted(filled: Store):
    filled.delete_runs("beta", [BASE[2].id])
    assert filled.studies() == ["alpha"] and BASE[2].id in _ids(filled, "alpha")


def test_unknown_study_or_run_changes_nothing(filled: Store):
    with pytest.raises(StoreError, match="unknown study 'gamma'"):
        filled.delete_runs("gamma", [BASE[0].id])
    with pytest.raises(StoreError, match="study 'beta' has no run"):
        filled.delete_runs("beta", [BASE[1].id])
    assert len(filled.runs()) == 5


@pytest.fixture
def trained(tmp_path):
    """The tiny study trained, its first run then marked failed; (folder, db, failed id)."""
    (tmp_path / "tiny.yaml").write_text(TINY_STUDY)
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    quiet = Console(quiet=True)
    minarch.run(tmp_path / "tiny.yaml", db=db, device="cpu", workers=1, report=False, console=quiet)
    with open_store(db) as opened:
        failed = opened.runs(study="tiny")[0]
        opened.finish(failed.id, "failed", message="out of memory")
        (weights,) = opened.artifacts(failed.id)
    return tmp_path, db, failed.id, weights.path


def test_remove_deletes_the_failed_runs_and_their_weight_files(trained):
    _, db, failed, weights = trained
    would = minarch.remove(study="tiny", db=db, failed=True, dry_run=True)
    assert list(would["run_id"]) == [failed] and len(minarch.runs(db=db)) == 4
    minarch.remove(study="tiny", db=db, failed=True)
    assert failed not in set(minarch.runs(db=db)["run_id"])
    assert not (trained[0] / weights).exists() and len(minarch.runs(db=db)) == 3
    with pytest.raises(minarch.MinarchError, match="study 'tiny' has no run nope"):
        minarch.remove(study="tiny", db=db, run_ids=["nope"])


def test_rm_without_a_terminal_or_yes_refuses_in_one_line(trained):
    folder, db, failed, _ = trained
    refused = minarch_cli("rm", "--study", "tiny", "--failed", "--db", db, cwd=folder)
    assert refused.returncode == 2 and len(error_lines(refused)) == 1
    assert "not deleting 1 runs of study tiny (1 failed)" in refused.stderr
    assert "--yes" in refused.stderr and failed in set(minarch.runs(db=db)["run_id"])
    done = minarch_cli("rm", "--study", "tiny", "--failed", "--yes", "--db", db, cwd=folder)
    assert done.returncode == 0 and "deleted 1 runs of study tiny" in done.stderr
    assert failed not in set(minarch.runs(db=db)["run_id"])
    again = minarch_cli("rm", "--study", "tiny", "--failed", "--db", db, cwd=folder)
    assert again.returncode == 0 and "no failed runs to delete" in again.stdout


def test_rm_asks_in_a_terminal_and_deletes_only_on_yes(trained, monkeypatch):
    _, db, _, _ = trained
    monkeypatch.setattr(cli, "_interactive", lambda: True)
    runner = CliRunner()
    args = ["rm", "--study", "tiny", "--db", db]
    declined = runner.invoke(cli.app, args, input="n\n")
    assert declined.exit_code == 1 and "delete 4 runs of study tiny" in declined.output
    assert len(minarch.runs(db=db)) == 4
    accepted = runner.invoke(cli.app, args, input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert not minarch.has_study("tiny", db=db)  # no runs left: the study is gone


def test_run_rerun_failed_deletes_then_trains_the_failed_runs_again(trained):
    folder, db, failed, _ = trained
    args = ("run", "tiny.yaml", "--db", db, "--device", "cpu", "--workers", "1", "--no-report")
    refused = minarch_cli(*args, "--rerun-failed", cwd=folder)
    assert refused.returncode == 2 and "pass --yes" in refused.stderr
    result = minarch_cli(*args, "--rerun-failed", "--yes", cwd=folder)
    assert result.returncode == 0, result.stderr
    assert "deleted 1 runs of study tiny (1 failed)" in result.stderr
    assert "trained 1 done" in result.stderr
    runs = minarch.runs(db=db)
    assert failed in set(runs["run_id"]) and set(runs["state"]) == {"done"}


def test_running_runs_are_not_deleted(filled: Store, url: str):  # noqa: F811
    filled.claim([BASE[1].id], "elsewhere:1")
    with pytest.raises(minarch.MinarchError, match="1 of the runs to delete are running"):
        minarch.remove(study="alpha", db=url)
    assert len(filled.runs(study="alpha")) == 5
    assert len(minarch.remove(study="alpha", db=url, run_ids=[BASE[2].id])) == 1


# --- weight files of stores in other folders (relative store URLs) -----------------------

FINETUNED = TINY_STUDY + "prune: {unstructured: {sparsity: [0.5]}, pipelines: [finetune]}\n"


def _train_in(folder, monkeypatch, study: str = TINY_STUDY, db: str = "sqlite:///ft.db") -> None:
    """``cd folder && minarch run tiny.yaml --db sqlite:///ft.db``."""
    folder.mkdir(exist_ok=True)
    (folder / "tiny.yaml").write_text(study)
    monkeypatch.chdir(folder)
    quiet = Console(quiet=True)
    minarch.run("tiny.yaml", db=db, device="cpu", workers=1, report=False, console=quiet)


def _weights(db: str) -> list:
    with open_store(db) as opened:
        return [Path(a.path) for a in opened.artifacts()]


def test_rm_in_one_folders_store_leaves_another_folders_weights(tmp_path, monkeypatch):
    """Run ids are the same in every store; a relative URL must not make their files one."""
    a, b = tmp_path / "A", tmp_path / "B"
    _train_in(a, monkeypatch)
    _train_in(b, monkeypatch)
    minarch.remove(study="tiny", db=f"sqlite:///{a / 'ft.db'}")  # run from B
    assert not list(a.rglob("*.pt"))
    kept = _weights(f"sqlite:///{b / 'ft.db'}")
    assert len(kept) == 4 and all(p.is_file() and p.is_relative_to(b) for p in kept)


def test_two_stores_in_one_folder_keep_their_own_weight_files(tmp_path, monkeypatch):
    _train_in(tmp_path, monkeypatch, db="sqlite:///one.db")
    _train_in(tmp_path, monkeypatch, db="sqlite:///two.db")
    minarch.remove(study="tiny", db="sqlite:///one.db")
    kept = _weights("sqlite:///two.db")
    assert len(kept) == 4 and all(p.is_file() for p in kept)


def test_derived_runs_train_from_another_folder(tmp_path, monkeypatch):
    _train_in(tmp_path / "A", monkeypatch)
    db = f"sqlite:///{tmp_path / 'A' / 'ft.db'}"
    _train_in(tmp_path / "elsewhere", monkeypatch, study=FINETUNED, db=db)
    states = minarch.runs(db=db, study="tiny")["state"]
    assert len(states) == 8 and set(states) == {"done"}


def test_rm_of_a_store_from_before_store_ids_keeps_files_in_the_shared_folder(trained):
    """Such stores shared `minarch-artifacts/`; their files may be another store's too."""
    folder, db, failed, weights = trained
    shared = folder / "minarch-artifacts" / "shared.pt"
    Path(weights).replace(shared)
    with open_store(db) as opened:
        opened.add_artifact(failed, "weights", str(shared), "0" * 64, 1)
    minarch.remove(study="tiny", db=db, failed=True)
    assert shared.exists() and failed not in set(minarch.runs(db=db)["run_id"])
