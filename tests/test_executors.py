"""Executors: the CPU policy, the same numbers whatever the worker count, clean stops.

Slow tests run the CLI as a user would and interrupt or kill it at chosen moments.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from minarch.errors import Interrupted, MinarchError
from minarch.execute import (
    Pack,
    Workspace,
    plan_study,
    resolve_engine,
    resolve_threads,
    resolve_workers,
)
from minarch.execute.claims import claimable_packs
from minarch.execute.policy import split_for_workers, usable_cores
from minarch.spec import parse_study
from minarch.store import NewRun, open_store
from tests.cli import minarch

# Two MLP packs (4 members: 2 lr x 2 seeds) and two CNN packs, all tiny: "auto" trains them batched.
STUDY = """
name: policy
datasets: [digits]
models:
  - {family: mlp, width: [8, 16]}
  - {family: cnn, depth: 1, channels: [2, 4]}
training: {optimizer: sgd, lr: [0.05, 0.1], epochs: 2, batch_size: 32}
seeds: 2
"""
METRICS = ["final_val_acc", "final_val_loss", "final_train_loss", "best_val_acc"]


def test_engine_comes_from_the_command_line_else_the_study():
    assert resolve_engine(None, "auto") == "auto"
    assert resolve_engine(None, "batched") == "batched"
    assert resolve_engine("plain", "batched") == "plain"
    expected = "engine='vmap': expected one of auto, plain, fused, batched"
    with pytest.raises(MinarchError, match=expected):
        resolve_engine("vmap", "auto")


def test_bad_engine_in_a_study_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "bad.yaml").write_text(STUDY + "execution: {engine: vmap}\n")
    done = minarch("run", "bad.yaml", "--db", f"sqlite:///{tmp_path / 'r.db'}", cwd=tmp_path)
    assert done.returncode == 2
    assert "execution.engine" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "r.db").exists()


def test_cpu_packs_train_with_one_thread_and_workers_follow_the_cores():
    cpu = torch.device("cpu")
    assert resolve_threads(None, cpu) == 1
    assert resolve_threads(3, cpu) == 3
    assert resolve_workers("auto", cpu, packs=1, runs=1000) == usable_cores()
    assert resolve_workers("auto", cpu, packs=1, runs=1) == 1  # never more workers than runs
    assert resolve_workers("3", cpu, packs=1, runs=1) == 3
    for bad in ("0", "many", 0):
        with pytest.raises(MinarchError, match="workers="):
            resolve_workers(bad, cpu, packs=4, runs=4)
    with pytest.raises(MinarchError, match="threads="):
        resolve_threads(0, cpu)


def test_cpu_packs_are_cut_per_worker_and_gpu_packs_stay_whole():
    spec = parse_study(STUDY)
    packs = plan_study(spec, STUDY).packs()
    pack = Pack(tuple(c for p in packs for c in p.configs)[:5])
    assert [len(p.configs) for p in pack.split(2)] == [3, 2]
    assert [c.id for p in pack.split(2) for c in p.configs] == pack.run_ids  # order kept
    assert [len(p.configs) for p in pack.split(10)] == [1] * 5
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    cut = split_for_workers(packs, cpu, 2)
    assert [c.id for p in cut for c in p.configs] == [c.id for p in packs for c in p.configs]
    assert len(cut) == 2 * len(packs)  # 4 members each: two parts of 2
    assert split_for_workers(packs, cpu, 1) == packs
    assert split_for_workers(packs, gpu, 2) == packs  # a GPU pack's members share each step


SEEDS_3 = """
name: seeds
datasets: [digits]
models: [{family: mlp, width: [8]}]
training: {optimizer: sgd, lr: [0.05, 0.1], epochs: 1}
seeds: 3
"""


def test_a_pack_that_trains_batched_is_cut_between_its_fleets_only():
    spec = parse_study(SEEDS_3)
    [pack] = plan_study(spec, SEEDS_3).packs()  # 2 lr x seeds 0, 1, 2: two fleets of 3 lanes
    cpu = torch.device("cpu")
    ids = [c.id for c in pack.configs]
    assert [p.run_ids for p in split_for_workers([pack], cpu, 2)] == [ids[:3], ids[3:]]
    # Three workers would cut a fleet: it stays whole, two parts for three workers.
    assert [len(p.configs) for p in split_for_workers([pack], cpu, 3)] == [3, 3]
    assert [len(p.configs) for p in split_for_workers([pack], cpu, 3, "plain")] == [2, 2, 2]
    assert [len(p.configs) for p in split_for_workers([pack], cpu, 4, "batched")] == [3, 3]
    one_lr = pack.only(ids[:3])
    assert split_for_workers([one_lr], cpu, 2) == [one_lr]  # ghosts would double the work
    assert [len(p.configs) for p in split_for_workers([one_lr], cpu, 2, "fused")] == [2, 1]


def test_a_worker_that_starts_late_takes_the_other_part_of_a_pack(tmp_path):
    spec = parse_study(STUDY)
    configs = {c.id: c for c in plan_study(spec, STUDY).packs()[0].configs}  # one pack of 4
    workspace = Workspace(f"sqlite:///{tmp_path / 'r.db'}", tmp_path, tmp_path, "cpu", 1, 2)
    first, second = claimable_packs(configs, set(configs), workspace)
    assert (len(first.configs), len(second.configs)) == (2, 2)
    # Another worker claimed the first part: what is left is the second part, whole.
    assert claimable_packs(configs, set(second.run_ids), workspace) == [second]
    one_worker = replace(workspace, workers=1)
    assert [len(p.configs) for p in claimable_packs(configs, set(configs), one_worker)] == [4]


def test_interrupted_exit_codes_follow_the_shell():
    assert Interrupted(signal.SIGINT).exit_code == 130
    assert Interrupted(signal.SIGTERM).exit_code == 143
    assert isinstance(Interrupted(), KeyboardInterrupt)


def test_release_returns_only_the_owners_running_runs_to_pending(tmp_path):
    with open_store(f"sqlite:///{tmp_path / 'r.db'}") as store:
        runs = [NewRun(f"r{i}", "p", {}, "digits", "mlp", "m", 0.1, 0.0, i, 1, 1) for i in range(3)]
        store.register_study("s", "name: s", runs)
        store.claim(["r0", "r1"], "host:1")
        store.claim(["r2"], "host:2")
        store.record_epoch("r0", 1, {"val_acc": 0.5})
        assert store.release("host:1", ["r1"]) == ["r1"]
        assert sorted(store.release("host:1")) == ["r0"]
        states = {r.id: r.state for r in store.runs()}
        assert states == {"r0": "pending", "r1": "pending", "r2": "running"}
        assert store.epochs_frame().empty  # a released run keeps nothing of its attempt


def _metrics(db: Path):
    with open_store(f"sqlite:///{db}") as store:
        frame = store.runs_frame().set_index("run_id").sort_index()
        curves = store.epochs_frame().sort_values(["run_id", "epoch"])
    return frame[[*METRICS, "engine"]], curves.drop(columns=["wall_time"]).reset_index(drop=True)


def _run(folder: Path, db: Path, workers: str, *options: str) -> str:
    """``minarch run policy.yaml`` on the CPU with ``workers``; returns what it wrote to stderr."""
    done = minarch(
        "run", "policy.yaml", "--db", f"sqlite:///{db}", "--device", "cpu",
        "--workers", workers, "--no-report", *options, cwd=folder,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stderr


def _trained_alike(folder: Path, engines: tuple[set[str], set[str]]) -> None:
    """``w1.db`` and ``w2.db`` in ``folder``, trained by one and by two workers, hold the
    same numbers, trained by ``engines`` (one set per store)."""
    (runs1, curves1), (runs2, curves2) = (_metrics(folder / f"w{n}.db") for n in (1, 2))
    assert (set(runs1["engine"]), set(runs2["engine"])) == engines
    assert runs1[METRICS].equals(runs2[METRICS])  # bit-identical, not approximately equal
    assert curves1.equals(curves2)
    with open_store(f"sqlite:///{folder / 'w2.db'}") as store:
        environments = [r.environment for r in store.runs()]
    assert {(e["threads"], e["workers"]) for e in environments} == {(1, 2)}


@pytest.mark.slow
@pytest.mark.long(50)
def test_same_numbers_with_one_or_two_workers_fused(tmp_path):
    """The fused engine, asked for: the same bits from whole packs and from their halves
    (the auto engine: the next test, which trains the same runs and measures them too)."""
    (tmp_path / "policy.yaml").write_text(STUDY)
    for workers in ("1", "2"):
        stderr = _run(tmp_path, tmp_path / f"w{workers}.db", workers, "--engine", "fused")
        assert f"{workers} worker" in stderr
    _trained_alike(tmp_path, ({"fused"}, {"fused"}))


EVALUATED = STUDY.replace(
    "seeds: 2",
    """seeds: 2
prune: {unstructured: {scope: [global], sparsity: [0.5]}, pipelines: [oneshot]}
quantize: {bits: [8, 3], casts: [fp16]}""",
)


def _evaluations(db: Path) -> tuple[dict, list]:
    """Each (run, setting)'s metrics, and the evaluations' and runs' times in one sorted list."""
    with open_store(f"sqlite:///{db}") as store:
        evaluations = store.evaluations()
        runs = store.runs()
    measured = {(e.run_id, e.key): e.metrics for e in evaluations}
    events = sorted([(e.created_at, "evaluated") for e in evaluations]
                    + [(r.finished_at, "trained") for r in runs])  # fmt: skip
    return measured, [what for _, what in events]


@pytest.mark.slow
@pytest.mark.long(45)
def test_workers_evaluate_each_pack_as_it_finishes_with_the_drivers_numbers(tmp_path):
    """The auto engine with one and with two workers: the same trained and measured bits."""
    (tmp_path / "policy.yaml").write_text(EVALUATED)
    results = {}
    for workers in ("1", "2"):
        db = tmp_path / f"w{workers}.db"
        assert f"{workers} worker" in _run(tmp_path, db, workers)
        results[workers] = _evaluations(db)
        measured, events = results[workers]
        assert len(measured) == 16 * 4 and not any("error" in m for m in measured.values())
        if workers == "1":  # one worker: a fixed order (with two, it is a race by design)
            # Packs are evaluated as each finishes, before the next trains, not after all.
            assert events.index("evaluated") < len(events) - 1 - events[::-1].index("trained")
    assert results["1"][0] == results["2"][0]  # bit-identical
    # Two workers cut each 4-member pack in two: the same numbers from another pack.
    # The CNNs train batched; the MLPs fused whole, plain in halves (the same bits).
    _trained_alike(tmp_path, ({"batched", "fused"}, {"batched", "plain"}))
    # What a worker did not evaluate, the driver measures after training: the same numbers.
    with sqlite3.connect(tmp_path / "w2.db") as connection:
        connection.execute("DELETE FROM evaluations")
    _run(tmp_path, tmp_path / "w2.db", "2")
    assert _evaluations(tmp_path / "w2.db")[0] == results["1"][0]


def _start(folder: Path, *args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINARCH_")}
    return subprocess.Popen(
        [sys.executable, "-m", "minarch", "run", "policy.yaml", "--db", "sqlite:///runs.db",
         "--device", "cpu", "--no-download", "--no-report", *args],
        cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _wait_for(db: Path, ready, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 600  # a loaded machine is slow, not wrong
    while time.monotonic() < deadline and process.poll() is None:
        if db.exists():
            with open_store(f"sqlite:///{db}") as store:
                if ready(store):
                    return
        time.sleep(0.05)
    process.kill()
    pytest.fail("the study finished (or hung) before the moment the test waits for")


def _states(db: Path) -> list[str]:
    with open_store(f"sqlite:///{db}") as store:
        return [r.state for r in store.runs()]


@pytest.mark.slow
@pytest.mark.long(35)
@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_leaves_unfinished_runs_pending_and_says_so(tmp_path, workers):
    """SIGTERM once a pack has stored an epoch: 16 runs of 3 epochs are far from done."""
    (tmp_path / "policy.yaml").write_text(STUDY.replace("epochs: 2", "epochs: 3"))
    process = _start(tmp_path, "--workers", workers)
    _wait_for(tmp_path / "runs.db", lambda s: not s.epochs_frame().empty, process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr
    states = _states(tmp_path / "runs.db")
    left = states.count("pending")
    assert left and "running" not in states and "failed" not in states
    assert f"interrupted: {left} runs will resume on the next `minarch run`" in stderr
    rerun = _start(tmp_path, "--workers", workers)
    _, stderr = rerun.communicate(timeout=900)
    assert rerun.returncode == 0, stderr
    assert f"{left} to train" in stderr
    assert set(_states(tmp_path / "runs.db")) == {"done"}


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_a_worker_killed_by_sigkill_is_replaced_and_the_study_completes(tmp_path):
    (tmp_path / "policy.yaml").write_text(STUDY.replace("epochs: 2", "epochs: 3"))
    process = _start(tmp_path, "--workers", "2")
    _wait_for(tmp_path / "runs.db", lambda s: "running" in [r.state for r in s.runs()], process)
    workers = [
        p for p in _children(process.pid) if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text()
    ]
    assert workers, "no worker processes found"
    os.kill(workers[0], signal.SIGKILL)
    _, stderr = process.communicate(timeout=900)
    assert process.returncode == 0, stderr
    assert "died with exit code -9" in stderr and "restarted it" in stderr
    with open_store(f"sqlite:///{tmp_path / 'runs.db'}") as store:
        runs = store.runs()
    assert len(runs) == 16 and {r.state for r in runs} == {"done"}


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux's")
def test_workers_of_a_parent_killed_by_sigkill_release_their_runs_and_exit(tmp_path):
    (tmp_path / "policy.yaml").write_text(STUDY.replace("epochs: 2", "epochs: 10"))
    process = _start(tmp_path, "--workers", "2")
    db = tmp_path / "runs.db"
    _wait_for(db, lambda s: not s.epochs_frame().empty, process)
    workers = _children(process.pid)
    process.send_signal(signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 120
    while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers), "orphaned workers"
    assert "running" not in _states(db)  # released, not left to a two-minute heartbeat
