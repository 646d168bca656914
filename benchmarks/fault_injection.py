"""Fault injection: kill -9 a study at random moments, resume it, compare every number.

python benchmarks/fault_injection.py --trials 20 --seed 0

Trains a small study (fused MLP packs and plain CNN packs on digits) once
without interruption, then ``--trials`` times: start ``minarch run``, SIGKILL
its whole process group (the driver and any workers) once the store holds a
random number of epoch rows (drawn between 1 and the study's total, so kills
land inside epochs, between members' saves and between packs), run it again
to the end, and compare every run's final metrics and every epoch row with
the reference store. Prints JSON: how many kills landed while runs were
training, and how many values differed (expected 0).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from minarch.store import open_store

STUDY = """
name: faults
datasets: [digits]
models:
  - {family: mlp, width: [8, 16]}
  - {family: cnn, depth: 1, channels: 4}
training: {optimizer: sgd, lr: [0.05, 0.1], epochs: 4, batch_size: 32}
seeds: 2
"""
METRICS = ["state", "final_val_acc", "final_val_loss", "final_train_loss", "best_val_acc"]


def _command(folder: Path, workers: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINARCH_")}
    return subprocess.Popen(
        [sys.executable, "-m", "minarch", "run", "faults.yaml", "--db", "sqlite:///runs.db",
         "--device", "cpu", "--workers", workers, "--out", "reports"],
        cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # its own process group: one kill reaches the workers too
    )  # fmt: skip


def _numbers(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    with open_store(f"sqlite:///{folder / 'runs.db'}") as store:
        runs = store.runs_frame().set_index("run_id").sort_index()[METRICS]
        epochs = store.epochs_frame().drop(columns=["wall_time"])
    return runs, epochs.sort_values(["run_id", "epoch"]).reset_index(drop=True)


def _kill_at(folder: Path, process: subprocess.Popen, epoch_rows: int) -> dict[str, int]:
    """SIGKILL the run's process group once ``epoch_rows`` curve points are stored."""
    db = folder / "runs.db"
    while process.poll() is None:
        if db.exists():
            with open_store(f"sqlite:///{db}", read_only=True) as store:
                if len(store.epochs_frame()) >= epoch_rows:
                    os.killpg(process.pid, signal.SIGKILL)
                    break
        time.sleep(0.01)
    process.wait()
    return _numbers(folder)[0]["state"].value_counts().to_dict()


def _finish(folder: Path, workers: str) -> None:
    process = _command(folder, workers)
    _, stderr = process.communicate(timeout=1800)
    if process.returncode != 0:
        raise SystemExit(f"minarch run failed:\n{stderr[-2000:]}")


def _differences(a: tuple[pd.DataFrame, pd.DataFrame], b: tuple[pd.DataFrame, pd.DataFrame]):
    (runs_a, epochs_a), (runs_b, epochs_b) = a, b
    if runs_a.shape != runs_b.shape or epochs_a.shape != epochs_b.shape:
        return max(runs_a.size, runs_b.size) + max(epochs_a.size, epochs_b.size)
    return int((runs_a != runs_b).to_numpy().sum() + (epochs_a != epochs_b).to_numpy().sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", default="1", help="as minarch run --workers (1, 2, auto)")
    options = parser.parse_args()
    chooser = random.Random(options.seed)
    with tempfile.TemporaryDirectory() as root:
        reference = Path(root, "reference")
        reference.mkdir()
        (reference / "faults.yaml").write_text(STUDY)
        _finish(reference, options.workers)
        expected = _numbers(reference)
        total_rows = len(expected[1])
        trials = []
        for trial in range(options.trials):
            folder = Path(root, f"trial-{trial}")
            folder.mkdir()
            (folder / "faults.yaml").write_text(STUDY)
            rows = chooser.randint(1, total_rows - 1)
            states = _kill_at(folder, _command(folder, options.workers), rows)
            _finish(folder, options.workers)
            trials.append(
                {
                    "kill_after_epoch_rows": rows,
                    "states_at_kill": states,
                    "differences": _differences(expected, _numbers(folder)),
                }
            )
    print(
        json.dumps(
            {
                "trials": len(trials),
                "kills_while_training": sum("running" in t["states_at_kill"] for t in trials),
                "differences": sum(t["differences"] for t in trials),
                "epoch_rows": total_rows,
                "workers": options.workers,
                "detail": trials,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
