"""A study shared with other drivers, and weights files broken under it."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest
from rich.console import Console

import minarch
from minarch.store import open_store
from tests.cli import TINY_STUDY, trained_here
from tests.cli import minarch as minarch_cli

FINETUNED = TINY_STUDY + "prune: {unstructured: {sparsity: [0.5]}, pipelines: [finetune]}\n"


def _run(folder: Path, study: str = TINY_STUDY, **options) -> minarch.api.RunOutcome:
    (folder / "tiny.yaml").write_text(study)
    return minarch.run(
        folder / "tiny.yaml",
        db=f"sqlite:///{folder / 'runs.db'}",
        device="cpu",
        workers=1,
        report=False,
        **options,
    )


def test_runs_another_driver_trains_are_waited_for_not_left_pending(tmp_path):
    """Another driver holds two runs (fresh heartbeats) and finishes them a moment later."""
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    (tmp_path / "tiny.yaml").write_text(TINY_STUDY)
    the_plan = minarch.plan(tmp_path / "tiny.yaml")
    held = [r.config.id for r in the_plan.runs[:2]]
    with open_store(db) as store:
        store.register_study("tiny", the_plan.text, [r.new_run() for r in the_plan.runs])
        store.claim(held, "another-host:1")

    def other_driver_finishes() -> None:
        """After this driver has trained the rest: it then finds the other's still running."""
        with open_store(db) as store:
            while len(store.runs(states=["done"])) < len(the_plan.runs) - len(held):
                time.sleep(0.1)
            time.sleep(2)
            for run_id in held:
                store.finish(run_id, "done", metrics={"final_val_acc": 0.5})

    threading.Thread(target=other_driver_finishes).start()
    console = Console(record=True, width=200)
    outcome = _run(tmp_path, console=console)
    assert outcome.summary.remaining == 0
    assert outcome.summary.trained == {"done": 4}
    assert "waiting for 2 runs that other processes are training" in console.export_text()


@pytest.mark.slow
@pytest.mark.long(30)
def test_two_drivers_at_once_both_exit_0(tmp_path):
    """`minarch run` twice at once on one SQLite store (as a SLURM array would)."""
    study = TINY_STUDY.replace("width: [4, 32]", "width: [4, 8, 16, 32]").replace(
        "epochs: 3", "epochs: 8"
    )
    (tmp_path / "tiny.yaml").write_text(study)
    args = ("run", "tiny.yaml", "--db", "sqlite:///c.db", "--device", "cpu", "--workers", "1")
    # As the README's array jobs: all but one train only; one writes the report as well.
    commands = [(*args, "--no-report"), (*args, "--out", "reports")]
    threads, results = [], {}
    for i, each in enumerate(commands):
        thread = threading.Thread(
            target=lambda i=i, each=each: results.update({i: minarch_cli(*each, cwd=tmp_path)})
        )
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()
    for result in results.values():
        assert result.returncode == 0, result.stderr
        assert "still pending" not in result.stderr
    assert sum(trained_here(result.stderr) for result in results.values()) == 8
    assert set(minarch.runs(db=f"sqlite:///{tmp_path / 'c.db'}")["state"]) == {"done"}


@pytest.mark.parametrize("damage", ["replaced", "deleted"])
def test_a_bad_parent_file_fails_only_its_children_with_the_fix(tmp_path, damage):
    _run(tmp_path)
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    with open_store(db) as store:
        first, second = (store.artifacts(r.id)[0] for r in store.runs()[:2])
    if damage == "replaced":
        shutil.copy(second.path, first.path)  # one base run's file over another's
    else:
        Path(first.path).unlink()
    outcome = _run(tmp_path, FINETUNED)
    assert outcome.summary.trained == {"done": 3, "failed": 1}
    frame = minarch.runs(db=db, study="tiny")
    failed = frame[frame["state"] == "failed"]
    assert list(failed["parent_id"]) == [first.run_id]
    message = failed["message"].iloc[0]
    assert f"weights of run {first.run_id}" in message
    assert f"`minarch rm --study STUDY --run {first.run_id}`" in message
    assert "then `minarch run`" in message
