"""Fault injection: kill, share or break a study at random moments, compare every number.

python benchmarks/fault_injection.py --case kill --trials 20 --seed 0
python benchmarks/fault_injection.py --case concurrent --trials 20 --seed 0
python benchmarks/fault_injection.py --case bad-artifact --trials 20 --seed 0
(--quick: a 2-epoch study, for a smoke test on a busy machine)

Trains a small study (fused MLP packs and plain CNN packs on digits) once
without interruption, then ``--trials`` times one case:

- kill: start ``minarch run``, SIGKILL its whole process group (the driver
  and any workers) once the store holds a random number of epoch rows (so
  kills land inside epochs, between members' saves and between packs), run it
  again to the end;
- concurrent: start a second ``minarch run`` on the same store once the first
  has stored a random number of epoch rows (0: both at once); both must exit 0;
- bad-artifact: with the base study trained, damage one random base run's
  weights file (replaced by another run's, truncated or deleted), then run the
  study with a fine-tuning pipeline: only that run's children may fail, each
  naming the fix; follow the fix (``minarch rm --run``, ``minarch run``).

Each trial's store is then compared with the reference store: every run's
final metrics and every epoch row. Prints JSON: how many values differed
(expected 0), and per case what went wrong along the way (expected nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
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
FINETUNE = "prune: {unstructured: {sparsity: [0.5]}, pipelines: [finetune]}\n"
METRICS = ["state", "final_val_acc", "final_val_loss", "final_train_loss", "best_val_acc"]
CASES = ("kill", "concurrent", "bad-artifact")
DAMAGES = ("replaced", "truncated", "deleted")


def _study(quick: bool, derived: bool = False) -> str:
    text = STUDY.replace("epochs: 4", "epochs: 2") if quick else STUDY
    return text + (FINETUNE if derived else "")


def _minarch(folder: Path, *args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINARCH_")}
    return subprocess.Popen(
        [sys.executable, "-m", "minarch", *args, "--db", "sqlite:///runs.db"],
        cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # its own process group: one kill reaches the workers too
    )  # fmt: skip


def _command(folder: Path, workers: str, out: str = "reports") -> subprocess.Popen:
    return _minarch(
        folder, "run", "faults.yaml", "--device", "cpu", "--workers", workers, "--out", out
    )


def _numbers(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    with open_store(f"sqlite:///{folder / 'runs.db'}") as store:
        runs = store.runs_frame().set_index("run_id").sort_index()[METRICS]
        epochs = store.epochs_frame().drop(columns=["wall_time"])
    return runs, epochs.sort_values(["run_id", "epoch"]).reset_index(drop=True)


def _wait_for_rows(folder: Path, process: subprocess.Popen, epoch_rows: int) -> None:
    """Return once ``epoch_rows`` curve points are stored (or the process has ended)."""
    db = folder / "runs.db"
    while process.poll() is None and epoch_rows > 0:
        if db.exists():
            with open_store(f"sqlite:///{db}", read_only=True) as store:
                if len(store.epochs_frame()) >= epoch_rows:
                    return
        time.sleep(0.01)


def _kill_at(folder: Path, process: subprocess.Popen, epoch_rows: int) -> dict[str, int]:
    """SIGKILL the run's process group once ``epoch_rows`` curve points are stored."""
    _wait_for_rows(folder, process, epoch_rows)
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    return _numbers(folder)[0]["state"].value_counts().to_dict()


def _finish(folder: Path, workers: str) -> None:
    process = _command(folder, workers)
    _, stderr = process.communicate(timeout=1800)
    if process.returncode != 0:
        raise SystemExit(f"minarch run failed:\n{stderr[-2000:]}")


def _kill_trial(folder: Path, rows: int, workers: str) -> dict:
    states = _kill_at(folder, _command(folder, workers), rows)
    _finish(folder, workers)
    return {"kill_after_epoch_rows": rows, "states_at_kill": states}


def _concurrent_trial(folder: Path, rows: int, workers: str) -> dict:
    """A second driver on the same store once the first has stored ``rows`` epoch rows."""
    first = _command(folder, workers, "reports-1")
    _wait_for_rows(folder, first, rows)
    second = _command(folder, workers, "reports-2")
    results = [(p.communicate(timeout=1800)[1], p.returncode) for p in (first, second)]
    return {
        "second_after_epoch_rows": rows,
        "exit_codes": [code for _, code in results],
        "problems": sum(code != 0 or "still pending" in err for err, code in results),
    }


def _bad_artifact_trial(folder: Path, chooser: random.Random, workers: str, quick: bool) -> dict:
    """Damage one base run's weights, run the study with fine-tuning, then follow the fix."""
    with open_store(f"sqlite:///{folder / 'runs.db'}") as store:
        weights = {r.id: Path(store.artifacts(r.id)[-1].path) for r in store.runs()}
    parent, other = chooser.sample(sorted(weights), 2)
    damage = chooser.choice(DAMAGES)
    if damage == "replaced":
        shutil.copy(weights[other], weights[parent])
    elif damage == "truncated":
        weights[parent].write_bytes(weights[parent].read_bytes()[:100])
    else:
        weights[parent].unlink()
    (folder / "faults.yaml").write_text(_study(quick, derived=True))
    process = _command(folder, workers)
    _, stderr = process.communicate(timeout=1800)
    with open_store(f"sqlite:///{folder / 'runs.db'}") as store:
        runs = store.runs()
    failed = [r for r in runs if r.state == "failed"]
    expected_failed = {r.id for r in runs if r.parent_id == parent}
    problems = int(process.returncode != 1) + int({r.id for r in failed} != expected_failed)
    problems += sum(f"--run {parent}`" not in (r.message or "") for r in failed)
    problems += sum(r.state != "done" for r in runs if r.id not in expected_failed)
    fix = _minarch(folder, "rm", "--study", "faults", "--run", parent, "--yes")
    problems += int(fix.wait() != 0)
    _finish(folder, workers)
    return {"damaged": parent, "damage": damage, "failed": len(failed), "problems": problems}


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
    parser.add_argument("--case", choices=CASES, default="kill")
    parser.add_argument("--quick", action="store_true", help="a 2-epoch study (a smoke test)")
    options = parser.parse_args()
    chooser, workers, quick = random.Random(options.seed), options.workers, options.quick
    with tempfile.TemporaryDirectory() as root:
        base = Path(root, "base")  # the base study, trained without interruption
        base.mkdir()
        (base / "faults.yaml").write_text(_study(quick))
        _finish(base, workers)
        reference = base
        if options.case == "bad-artifact":  # and its fine-tuned runs
            reference = Path(root, "reference")
            shutil.copytree(base, reference)  # the store records paths relative to itself
            (reference / "faults.yaml").write_text(_study(quick, derived=True))
            _finish(reference, workers)
        expected = _numbers(reference)
        total_rows = len(_numbers(base)[1])
        trials = []
        for trial in range(options.trials):
            folder = Path(root, f"trial-{trial}")
            if options.case == "bad-artifact":
                shutil.copytree(base, folder)
                detail = _bad_artifact_trial(folder, chooser, workers, quick)
            else:
                folder.mkdir()
                (folder / "faults.yaml").write_text(_study(quick))
                if options.case == "kill":
                    detail = _kill_trial(folder, chooser.randint(1, total_rows - 1), workers)
                else:
                    detail = _concurrent_trial(folder, chooser.randint(0, total_rows - 1), workers)
            trials.append({**detail, "differences": _differences(expected, _numbers(folder))})
    summary = {"case": options.case, "trials": len(trials), "quick": quick, "workers": workers}
    if options.case == "kill":
        summary["kills_while_training"] = sum("running" in t["states_at_kill"] for t in trials)
    else:
        summary["problems"] = sum(t["problems"] for t in trials)
    summary |= {"differences": sum(t["differences"] for t in trials), "epoch_rows": total_rows}
    print(json.dumps({**summary, "detail": trials}, indent=1))


if __name__ == "__main__":
    main()
