"""Kill a study with SIGKILL half-way, run it again: nothing lost, nothing trained twice,
and the runs trained again give the numbers of a study that was never killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

import minarch
from minarch.store import Store, open_store
from tests.cli import mid_run
from tests.cli import minarch as minarch_cli

pytestmark = pytest.mark.slow

# Four packs of two seeds, trained one after another (one worker). The kill lands in
# the second or third pack: a pack done before it, one part-way, one not started.
# Each pack's epochs 2-4 are the window; a few cheap epochs keep it wide enough to
# hit on a loaded machine (the training slows as much as the watcher).
STUDY = """
name: resume
datasets: [digits]
models:
  - family: mlp
    width: [4, 8, 16, 32]
training: {optimizer: sgd, lr: 0.05, epochs: 4, batch_size: 16, schedule: cosine}
seeds: 2
"""
EPOCHS = 4
METRICS = ["final_val_acc", "final_val_loss", "final_train_loss", "best_val_acc", "best_epoch"]


def _states(db: Path) -> dict[str, str]:
    with open_store(f"sqlite:///{db}") as store:
        return {r.id: r.state for r in store.runs()}


def _start(folder: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINARCH_")}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "minarch",
            "run",
            "resume.yaml",
            "--db",
            "sqlite:///runs.db",
            "--device",
            "cpu",
            "--workers",
            "1",  # one process: some runs pending, one part-way, when the kill lands
            "--no-report",
        ],
        cwd=folder,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _part_way(store: Store) -> bool:
    """A run is done, one is part-way through its epochs, and one has not started."""
    states = {r.state for r in store.runs()}
    return {"done", "pending"} <= states and mid_run(store, EPOCHS)


def _kill_mid_run(folder: Path) -> dict[str, str]:
    """SIGKILL once some runs are done, one is part-way through its epochs and one waits.

    One store stays open while the study trains: a check costs milliseconds, not
    the engine's start-up, so the watcher looks many times per epoch.
    """
    db = folder / "runs.db"
    open_store(f"sqlite:///{db}").close()  # created here, not by two processes at once
    process = _start(folder)
    deadline = time.monotonic() + 900  # generous: a loaded machine is slow, not wrong
    with open_store(f"sqlite:///{db}") as store:
        while time.monotonic() < deadline and process.poll() is None:
            if _part_way(store):
                process.send_signal(signal.SIGKILL)
                process.wait()
                return _states(db)
            time.sleep(0.02)
    process.kill()
    pytest.fail("the study finished (or hung) before it could be killed mid-way")


def _run_to_the_end(folder: Path) -> None:
    """``minarch run`` as a user resumes (workers: one per core); the report is not read."""
    args = ("run", "resume.yaml", "--db", "sqlite:///runs.db", "--device", "cpu", "--no-report")
    done = minarch_cli(*args, cwd=folder)
    assert done.returncode == 0, done.stderr


def test_sigkill_then_rerun_finishes_every_run_exactly_once(tmp_path):
    killed, reference = tmp_path / "killed", tmp_path / "reference"
    for folder in (killed, reference):
        folder.mkdir()
        (folder / "resume.yaml").write_text(STUDY)

    at_kill = _kill_mid_run(killed)
    assert "running" in at_kill.values() and "pending" in at_kill.values()
    with open_store(f"sqlite:///{killed / 'runs.db'}") as store:
        finished_before = {r.id: r.finished_at for r in store.runs(states=["done"])}

    _run_to_the_end(killed)
    # The numbers of a study never killed, trained in this process: no interpreter, PyTorch
    # or worker processes to start. One worker trains each pack fused, as the killed driver
    # did; the resumed driver's two train halves plain: for an MLP the same bits
    # (test_executors.py::test_same_numbers_with_one_or_two_workers).
    quiet = Console(quiet=True)
    minarch.run(reference / "resume.yaml", db=f"sqlite:///{reference / 'runs.db'}",
                device="cpu", workers=1, report=False, console=quiet)  # fmt: skip

    with open_store(f"sqlite:///{killed / 'runs.db'}") as store:
        runs = {r.id: r for r in store.runs()}
        curves = store.epochs_frame()
        artifacts = {run_id: store.artifacts(run_id) for run_id in runs}
    assert len(runs) == 8 and {r.state for r in runs.values()} == {"done"}
    for run_id, finished_at in finished_before.items():  # not retrained
        assert runs[run_id].finished_at == finished_at
    epochs_per_run = curves.groupby("run_id")["epoch"].apply(sorted)
    assert all(epochs == list(range(1, EPOCHS + 1)) for epochs in epochs_per_run)
    assert all(len(found) == 1 for found in artifacts.values())

    with open_store(f"sqlite:///{reference / 'runs.db'}") as store:
        uninterrupted = {r.id: r.metrics for r in store.runs()}
    assert set(uninterrupted) == set(runs)
    for run_id, run in runs.items():  # retrained runs reproduce the uninterrupted numbers
        assert {m: run.metrics[m] for m in METRICS} == {
            m: uninterrupted[run_id][m] for m in METRICS
        }, run_id
