"""The Ray executor: the same numbers as in-process, faults survived, no shared files needed.

Ray stays on the loopback interface (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0,
inherited by subprocesses), and local instances start with
``address="local"`` so a crashed earlier instance is never joined. The tests
on one local instance come first; the two-node cluster tests shut it down
and come last.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from rich.console import Console

import minarch
from minarch.errors import Interrupted, MinarchError
from minarch.execute import Workspace, plan_study
from minarch.execute.executors import RayOptions, place
from minarch.spec import parse_study
from minarch.store import Store, local_owner, open_store
from tests.cli import mid_run, trained_here

LOOPBACK = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
RAY_ARGS = {"include_dashboard": False, "log_to_driver": False, "object_store_memory": 10**8}

# Two fused MLP packs and two plain CNN packs of four runs each, quantized after training.
STUDY = """
name: rayed
datasets: [digits]
models:
  - {family: mlp, width: [8, 16]}
  - {family: cnn, depth: 1, channels: [2, 4]}
training: {optimizer: sgd, lr: [0.05, 0.1], epochs: 3, batch_size: 32}
seeds: 2
quantize: {bits: [8, 3]}
"""
BASE = """
name: derived
datasets: [digits]
models: [{family: mlp, width: 16}]
training: {optimizer: sgd, lr: 0.1, epochs: 2, batch_size: 64}
seeds: 2
"""
DERIVED = BASE + "prune: {unstructured: {sparsity: [0.5]}, pipelines: [finetune]}\n"
# Two plain packs of two runs, which finish one after the other.
CNN_STUDY = """
name: cnn
datasets: [digits]
models: [{family: cnn, depth: 1, channels: [2, 4]}]
training: {optimizer: sgd, lr: [0.05, 0.1], epochs: 4, batch_size: 32}
seeds: 1
"""
METRICS = ["final_val_acc", "final_val_loss", "final_train_loss", "best_val_acc", "engine"]


@pytest.fixture(scope="module")
def loopback() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in LOOPBACK.items():
            patch.setenv(name, value)
        yield


@pytest.fixture(scope="module")
def local_ray(loopback) -> Iterator[object]:
    """One local Ray instance with 2 CPUs for the module's single-node tests."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'minarch[ray]')")
    ray.shutdown()
    ray.init(address="local", num_cpus=2, **RAY_ARGS)
    yield ray
    ray.shutdown()


def _train(folder: Path, text: str, db: str, **options):
    """The study ``text`` trained through the API; its runs and curves, comparable bit for bit."""
    study = folder / "study.yaml"
    study.write_text(text)
    minarch.run(study, db=db, device="cpu", report=False, console=Console(quiet=True), **options)
    return _results(db)


def _results(db: str):
    with open_store(db) as store:
        runs = store.runs_frame().set_index("run_id").sort_index()
        curves = store.epochs_frame().sort_values(["run_id", "epoch"])
        evaluations = {(e.run_id, e.key): e.metrics for e in store.evaluations()}
    return runs[METRICS], curves.drop(columns=["wall_time"]).reset_index(drop=True), evaluations


def _same(left, right) -> None:
    assert left[0].equals(right[0])  # bit-identical, not approximately equal
    assert left[1].equals(right[1])
    assert left[2] == right[2]


@pytest.fixture(scope="module")
def in_process(tmp_path_factory):
    """STUDY trained in this process: the numbers every executor must reproduce."""
    folder = tmp_path_factory.mktemp("in-process")
    return _train(folder, STUDY, f"sqlite:///{folder / 'runs.db'}", workers=1)


# --- without Ray ------------------------------------------------------------------------


def test_asking_for_ray_without_it_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    with pytest.raises(MinarchError, match=r"pip install 'minarch\[ray\]'"):
        _place("ray")


def test_ray_options_need_the_ray_executor_and_never_change_run_ids():
    with pytest.raises(MinarchError, match="gpus_per_pack=0.5: only with the Ray executor"):
        _place("local", ray=RayOptions(gpus_per_pack=0.5))
    with pytest.raises(MinarchError, match="executor='dask': expected one of local, ray"):
        _place("dask")
    with pytest.raises(MinarchError, match="cpus_per_pack=0: expected more than 0"):
        _place("ray", RayOptions(cpus_per_pack=0))
    plain = parse_study(STUDY)
    placed = parse_study(STUDY + "execution: {gpus_per_pack: 0.25, cpus_per_pack: 2}\n")
    assert placed.execution.gpus_per_pack == 0.25
    ids = [[r.config.id for r in plan_study(s, "").runs] for s in (plain, placed)]
    assert ids[0] == ids[1]


def _place(kind: str, ray: RayOptions | None = None, device: str = "cpu", workers: str = "auto"):
    return place(
        kind,
        device=device,
        workers=workers,
        packs=4,
        runs=8,
        ray=ray or RayOptions(),
        execution=parse_study(STUDY).execution,
        db_url="sqlite://",
    )


def test_gpu_check_dry_run_prints_its_plan_without_a_gpu():
    """The plan covers the four GPU risks and its study files are valid studies.

    What it cannot check without a GPU: that ``--engine batched`` and
    ``--set training.precision=bf16`` are accepted (they need the batched engine
    and the precision field in this checkout) and what the steps measure.
    """
    script = Path(__file__).parents[1] / "benchmarks" / "gpu_check.sh"
    env = os.environ | {"PYTHON": sys.executable}
    done = subprocess.run(
        ["bash", str(script), "--dry-run"], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert plan["dry_run"] is True
    studies = {name: parse_study(text) for name, text in plan["studies"].items()}
    grid = plan_study(studies["grid.yaml"], "")
    assert len(grid.packs()) == 1 and len(grid.runs) == 9 * 9 * 3  # one fused pack
    assert len(plan_study(studies["ray.yaml"], "").packs()) == 4
    grid_run, ray_run, evaluation, fp32, bf16 = plan["commands"]
    assert "grid.yaml" in grid_run and "--engine batched" in grid_run
    assert "--executor ray --gpus-per-pack 0.25" in ray_run
    assert "eval.py" in evaluation
    same_but_bf16 = fp32.replace("fp32.db", "bf16.db").replace(
        " --out", " --set training.precision=bf16 --out"
    )
    assert bf16 == same_but_bf16 and "--set" not in fp32  # only the precision differs
    assert set(plan["output"]) >= {"ok", "failures", "steps"}


# --- one local Ray instance -------------------------------------------------------------


def test_ray_trains_the_same_numbers_as_in_process(local_ray, in_process, tmp_path):
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    _same(_train(tmp_path, STUDY, db, executor="ray"), in_process)
    with open_store(db) as store:
        environments = [r.environment for r in store.runs()]
    assert {(e["threads"], e["workers"]) for e in environments} == {(1, 2)}


def test_packs_ask_the_cluster_for_what_it_has(local_ray):
    placement = _place("ray", RayOptions(cpus_per_pack=0.5), device="auto")
    assert str(placement.device) == "cpu" and placement.workers == 4  # 2 CPUs, half each
    assert placement.ray == RayOptions(None, 0.0, 0.5)
    with pytest.raises(MinarchError, match="device='cuda': the Ray cluster has no GPU"):
        _place("ray", device="cuda")
    with pytest.raises(MinarchError, match="gpus_per_pack=0.5: packs train on the CPU"):
        _place("ray", RayOptions(gpus_per_pack=0.5))
    with pytest.raises(MinarchError, match="cpus_per_pack=3: no node"):
        _place("ray", RayOptions(cpus_per_pack=3))
    with pytest.raises(MinarchError, match="workers='2': Ray places the packs"):
        _place("ray", workers="2")


def test_the_driver_keeps_datasets_on_the_cpu_when_packs_train_on_gpus(local_ray, monkeypatch):
    gpu_node = {"Alive": True, "Resources": {"CPU": 2.0, "GPU": 1.0}}
    monkeypatch.setattr(local_ray, "nodes", lambda: [gpu_node])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    placement = _place("ray", device="cuda")
    assert str(placement.device) == "cuda" and str(placement.local_device) == "cpu"


def _descendants_titled(prefix: str) -> list[int]:
    """Processes below this one whose title starts with ``prefix`` (Ray names its workers)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                title = (entry / "cmdline").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = (int(stat.rsplit(")", 1)[1].split()[1]), title)
    found = []
    for pid, (_, title) in parents.items():
        ancestor = pid
        while ancestor in parents and ancestor != os.getpid():
            ancestor = parents[ancestor][0]
        if ancestor == os.getpid() and title.startswith(prefix):
            found.append(pid)
    return found


def _when(db: str, ready: Callable[[Store], bool], act: Callable[[], object]) -> threading.Thread:
    """In the background: wait until the store (which exists) is ``ready``, then ``act`` once."""

    def watch() -> None:
        deadline = time.monotonic() + 300
        with open_store(db) as store:
            while time.monotonic() < deadline:
                if ready(store):
                    act()
                    return
                time.sleep(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_a_killed_ray_worker_is_retried_and_every_run_done_once(local_ray, in_process, tmp_path):
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    killed: list[int] = []
    open_store(db).close()  # created here, not by two threads at once

    def kill_a_worker() -> None:
        for pid in _descendants_titled("ray::minarch "):  # a worker while it trains a pack
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            return

    watcher = _when(db, lambda s: mid_run(s, epochs=3), kill_a_worker)
    results = _train(tmp_path, STUDY, db, executor="ray")
    watcher.join()
    assert killed, "no Ray worker was training when the study had a running run"
    _same(results, in_process)
    with open_store(db) as store:
        assert {r.state for r in store.runs()} == {"done"}


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_sigterm_cancels_the_tasks_and_returns_their_runs_to_pending(local_ray, tmp_path):
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    open_store(db).close()  # created here, not by two threads at once
    late: list[int] = []  # a signal after the study ended must not end pytest
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: late.append(signum))
    try:
        _when(db, lambda s: mid_run(s, epochs=40), lambda: os.kill(os.getpid(), signal.SIGTERM))
        with pytest.raises(Interrupted) as caught:
            _train(tmp_path, CNN_STUDY.replace("epochs: 4", "epochs: 40"), db, executor="ray")
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert not late and caught.value.exit_code == 143
    with open_store(db) as store:
        states = [r.state for r in store.runs()]
    assert "running" not in states and "failed" not in states
    assert caught.value.remaining == states.count("pending") > 0
    deadline = time.monotonic() + 30
    while _descendants_titled("ray::minarch ") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _descendants_titled("ray::minarch ")  # the tasks were cancelled


def test_a_task_interrupts_itself_when_its_driver_is_gone(local_ray, monkeypatch, ctrl_c):
    from minarch.execute import ray_executor

    monkeypatch.setattr(ray_executor, "_job_is_dead", lambda job: True)
    monkeypatch.setattr(ray_executor, "DRIVER_POLL_SECONDS", 0.01)
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt), ray_executor._ends_with_its_driver():
        while time.monotonic() - started < 10:  # Python code, as training runs
            pass
    assert time.monotonic() - started < 5


def _cli(folder: Path, address: str) -> subprocess.Popen:
    """``minarch run --executor ray``, a second driver on the module's Ray instance."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINARCH_")} | LOOPBACK
    return subprocess.Popen(
        [sys.executable, "-m", "minarch", "run", "study.yaml", "--db", "sqlite:///runs.db",
         "--device", "cpu", "--no-download", "--no-report", "--executor", "ray",
         "--address", address],
        cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_a_killed_driver_resumes_without_training_twice(local_ray, tmp_path):
    from ray._private.state import jobs

    from minarch.execute.ray_executor import _job_is_dead

    # Plain: a one-seed batched fleet would train each run with two ghosts, thrice the time.
    # Each pack trains its four runs one after the other: once one is done, the other three
    # (60 epochs) are left for the dead driver's tasks to stop in, however slowly a loaded
    # machine notices. With two runs of 60 epochs per pack, the tasks once finished both
    # packs after the kill (load 10 on 2 cores) and the test failed.
    lrs = "lr: [0.02, 0.05, 0.1, 0.2]"
    study = CNN_STUDY.replace("epochs: 4", "epochs: 20").replace("lr: [0.05, 0.1]", lrs)
    study += "execution: {engine: plain}\n"
    (tmp_path / "study.yaml").write_text(study)
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    open_store(db).close()  # created here, not by two processes at once
    address = local_ray.get_runtime_context().gcs_address
    process = _cli(tmp_path, address)
    killed = threading.Event()
    _when(db, lambda s: s.runs(states=["done"]) and mid_run(s, epochs=20), killed.set)
    while not killed.wait(0.05):
        assert process.poll() is None, "the study ended before a run was done and another trained"
    process.kill()  # kill -9 once a run is done and another trains
    process.communicate()
    deadline = time.monotonic() + 30  # the dead driver's tasks end within seconds
    while _descendants_titled("ray::minarch ") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _descendants_titled("ray::minarch ")
    job = next(j["JobID"] for j in jobs() if j["DriverPid"] == process.pid)
    assert _job_is_dead(job)  # what a task of that driver checks, in case Ray lets it go on
    with open_store(db) as store:  # left running, released or failed: all train again
        finished = {r.id: r.finished_at for r in store.runs(states=["done"])}
    assert 0 < len(finished) < 8

    process = _cli(tmp_path, address)
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr
    assert f"{8 - len(finished)} to train" in stderr
    with open_store(db) as store:
        runs = store.runs()
    assert {r.state for r in runs} == {"done"}
    assert {r.id: r.finished_at for r in runs if r.id in finished} == finished  # not retrained


@pytest.mark.slow
def test_two_ray_drivers_at_once_train_each_run_once(local_ray, tmp_path):
    """Two `minarch run --executor ray` on one cluster and one store, as two jobs would be.

    Each submits every pack; a task whose runs the other driver's task claimed
    trains nothing, and that driver waits for them. Both exit 0, and every run
    is trained once: one epoch row per epoch, its weights stored once, and the
    drivers' own counts add up to the study.
    """
    study = CNN_STUDY.replace("lr: [0.05, 0.1]", "lr: [0.02, 0.05, 0.1, 0.2]")
    (tmp_path / "study.yaml").write_text(study + "execution: {engine: plain}\n")
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    open_store(db).close()  # created here, not by two processes at once
    address = local_ray.get_runtime_context().gcs_address
    drivers = [_cli(tmp_path, address) for _ in range(2)]
    trained = 0
    for driver in drivers:
        _, stderr = driver.communicate(timeout=600)
        assert driver.returncode == 0, stderr
        assert "still pending" not in stderr
        trained += trained_here(stderr)
    assert trained == 8  # each driver tells its runs from the other's
    with open_store(db) as store:
        runs = store.runs()
        epochs = store.epochs_frame().groupby("run_id")["epoch"].apply(sorted)
        artifacts = [len(store.artifacts(run.id)) for run in runs]
    assert len(runs) == 8 and {run.state for run in runs} == {"done"}
    assert all(list(epochs[run.id]) == [1, 2, 3, 4] for run in runs)
    assert artifacts == [1] * 8


def test_derived_runs_train_through_ray_as_in_process(local_ray, tmp_path):
    results = [
        _train(tmp_path, DERIVED, f"sqlite:///{tmp_path / f'{executor}.db'}", **options)
        for executor, options in (("local", {"workers": 1}), ("ray", {"executor": "ray"}))
    ]
    _same(*results)
    assert len(results[0][0]) == 4  # two parents, two fine-tuned children


def test_a_task_on_another_node_gets_its_parents_weights_and_returns_its_own(local_ray, tmp_path):
    """What crosses nodes: the parent's file in, the trained runs' files out."""
    from minarch.execute.datasets import DatasetCache
    from minarch.execute.ray_executor import stored_weights, train_task

    db = f"sqlite:///{tmp_path / 'runs.db'}"
    _train(tmp_path, BASE, db, workers=1)  # parents only, trained here
    the_plan = plan_study(parse_study(DERIVED), DERIVED)
    configs = {r.config.id: r.config for r in the_plan.runs}
    child = next(p for p in the_plan.packs() if p.first.derived is not None)
    parent_id = child.first.derived.parent
    with open_store(db) as store:
        store.register_study("derived", DERIVED, [r.new_run() for r in the_plan.runs])
        parent = stored_weights(store, parent_id)
    Path(parent.path).unlink()  # as on a node that never saw the parent train
    workspace = Workspace(db, tmp_path, tmp_path / "minarch-artifacts", "cpu", threads=1)
    data = DatasetCache(tmp_path, torch.device("cpu")).get(child.first.dataset)
    evaluations = {}  # a fine-tuned child is measured by no one-shot setting here
    returned = train_task(
        workspace, local_owner(), child, configs, evaluations, {parent_id: "done"}, data, parent,
        "elsewhere",
    )  # fmt: skip
    assert hashlib.sha256(Path(parent.path).read_bytes()).hexdigest() == parent.sha256
    with open_store(db) as store:
        states = {r.id: r.state for r in store.runs()}
        stored = [stored_weights(store, run_id) for run_id in child.run_ids]
    assert {states[run_id] for run_id in child.run_ids} == {"done"}
    assert sorted(returned, key=lambda w: w.path) == sorted(stored, key=lambda w: w.path)


# --- two nodes on this machine (shuts the module's local instance down) -----------------


@pytest.fixture(scope="module")
def two_nodes(loopback) -> Iterator[object]:
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'minarch[ray]')")
    from ray.cluster_utils import Cluster

    ray.shutdown()
    node = {"num_cpus": 1, "include_dashboard": False, "object_store_memory": 10**8}
    cluster = Cluster(initialize_head=True, head_node_args=node)
    cluster.add_node(**node)
    ray.init(address=cluster.address, log_to_driver=False)
    cluster.wait_for_nodes()
    yield cluster
    ray.shutdown()
    cluster.shutdown()


def test_a_sqlite_store_is_refused_on_several_nodes(two_nodes, tmp_path):
    with pytest.raises(MinarchError, match="cannot share a SQLite file; use PostgreSQL"):
        _train(tmp_path, STUDY, f"sqlite:///{tmp_path / 'runs.db'}", executor="ray")
    assert not (tmp_path / "runs.db").exists()  # refused before anything was written


def test_a_study_survives_losing_a_node(two_nodes, postgres_url, in_process, tmp_path):
    worker = next(node for node in two_nodes.list_all_nodes() if node is not two_nodes.head_node)
    open_store(postgres_url).close()  # created here, not by two threads at once

    def lose_the_node() -> None:
        two_nodes.remove_node(worker)

    watcher = _when(postgres_url, lambda s: mid_run(s, epochs=3), lose_the_node)
    results = _train(tmp_path, STUDY, postgres_url, executor="ray")
    watcher.join()
    assert worker not in two_nodes.list_all_nodes()
    _same(results, in_process)


@pytest.mark.parametrize("address", [None, "auto"])
def test_a_local_ray_chooses_token_authentication_itself(monkeypatch, address):
    """Ray 2.60 warns on every new local instance unless RAY_AUTH_MODE is set; we set it there."""
    seen = {}

    def init(**kwargs):
        seen["mode"] = os.environ.get("RAY_AUTH_MODE")
        raise RuntimeError("stopped here")

    fake = types.SimpleNamespace(is_initialized=lambda: False, init=init)
    monkeypatch.setitem(sys.modules, "ray", fake)
    monkeypatch.setenv("RAY_AUTH_MODE", "placeholder")  # so that teardown removes it again
    monkeypatch.delenv("RAY_AUTH_MODE")
    with pytest.raises(MinarchError, match="stopped here"):
        _place("ray", RayOptions(address=address))
    assert seen["mode"] == ("token" if address is None else None)
