"""Kill a study with SIGKILL half-way, run it again: nothing lost, nothing trained twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from minarch.store import open_store
from tests.cli import minarch

pytestmark = pytest.mark.slow

STUDY = """
name: resume
datasets: [digits]
models:
  - family: mlp
    width: [4, 8, 16, 32]
training: {optimizer: sgd, lr: 0.05, epochs: 12, batch_size: 16, schedule: cosine}
seeds: 2
"""
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


def _kill_mid_run(folder: Path) -> dict[str, str]:
    """SIGKILL once some runs are done and one is part-way through its epochs."""
    process, db = _start(folder), folder / "runs.db"
    deadline = time.monotonic() + 900  # generous: a loaded machine is slow, not wrong
    while time.monotonic() < deadline and process.poll() is None:
        if db.exists():
            states = _states(db)
            with open_store(f"sqlite:///{db}") as store:
                curves = store.epochs_frame()
            running = [i for i, s in states.items() if s == "running"]
            partial = running and (curves["run_id"] == running[0]).any()
            if list(states.values()).count("done") >= 2 and partial:
                process.send_signal(signal.SIGKILL)
                process.wait()
                return _states(db)
        time.sleep(0.02)
    process.kill()
    pytest.fail("the study finished (or hung) before it could be killed mid-way")


def test_sigkill_then_rerun_finishes_every_run_exactly_once(tmp_path):
    killed, reference = tmp_path / "killed", tmp_path / "reference"
    for folder in (killed, reference):
        folder.mkdir()
        (folder / "resume.yaml").write_text(STUDY)

    at_kill = _kill_mid_run(killed)
    assert "running" in at_kill.values() and "pending" in at_kill.values()
    with open_store(f"sqlite:///{killed / 'runs.db'}") as store:
        finished_before = {r.id: r.finished_at for r in store.runs(states=["done"])}

    assert (
        minarch(
            "run", "resume.yaml", "--db", "sqlite:///runs.db", "--device", "cpu", cwd=killed
        ).returncode
        == 0
    )
    assert (
        minarch(
            "run", "resume.yaml", "--db", "sqlite:///runs.db", "--device", "cpu", cwd=reference
        ).returncode
        == 0
    )

    with open_store(f"sqlite:///{killed / 'runs.db'}") as store:
        runs = {r.id: r for r in store.runs()}
        curves = store.epochs_frame()
        artifacts = {run_id: store.artifacts(run_id) for run_id in runs}
    assert len(runs) == 8 and {r.state for r in runs.values()} == {"done"}
    for run_id, finished_at in finished_before.items():  # not retrained
        assert runs[run_id].finished_at == finished_at
    epochs_per_run = curves.groupby("run_id")["epoch"].apply(sorted)
    assert all(epochs == list(range(1, 13)) for epochs in epochs_per_run)
    assert all(len(found) == 1 for found in artifacts.values())

    with open_store(f"sqlite:///{reference / 'runs.db'}") as store:
        uninterrupted = {r.id: r.metrics for r in store.runs()}
    assert set(uninterrupted) == set(runs)
    for run_id, run in runs.items():  # retrained runs reproduce the uninterrupted numbers
        assert {m: run.metrics[m] for m in METRICS} == {
            m: uninterrupted[run_id][m] for m in METRICS
        }, run_id
