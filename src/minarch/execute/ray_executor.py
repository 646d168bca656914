"""Train a study on a Ray cluster: one Ray task per pack, placed by Ray.

The driver (this process) groups the pending runs into packs and submits one
task per pack whose parent has finished, asking for ``cpus_per_pack`` CPUs
and ``gpus_per_pack`` GPUs (a fraction shares a GPU between packs). Each task
runs the ordinary claim-and-train step with its own store connection, so the
store's claims still decide what is done: a Ray study can share its store
with ``--workers N`` and hand-started ``minarch run`` processes.

- Owner: every task claims under the driver's owner string (``host:pid``).
  A driver's tasks end with it (Ray stops them, and each task also watches
  its driver), so the runs of a dead driver are abandoned exactly like those
  of a dead local process and ``store.reclaim`` frees them on the next
  ``minarch run``. A task that Ray retries (its worker process or node died)
  first releases what the previous attempt left running in its own pack.
- Data: the driver loads each dataset once, into its CPU memory (never onto a
  GPU of its own), and shares it through Ray's object store, so no node needs
  the data files.
- Weights: a task writes its runs' weights under the artifacts folder, at the
  same absolute path on every node (the folder need not be shared). A task on
  another node than the driver returns the files' bytes, which the driver
  writes at that path; a derived pack receives its parent's file the same way
  and writes it where the store says it is, before ``load_trained`` checks
  its SHA-256.
"""

from __future__ import annotations

import _thread
import hashlib
import logging
import math
import os
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from rich.console import Console

from minarch.data import Dataset
from minarch.errors import OptionError
from minarch.execute.claims import STALE_AFTER_SECONDS, claim_and_train, parent_state
from minarch.execute.datasets import DatasetCache
from minarch.execute.evaluate import Evaluations
from minarch.execute.executor import Executor
from minarch.execute.executors import Placement, RayOptions
from minarch.execute.pack import Pack, packs_of
from minarch.execute.policy import usable_cores
from minarch.execute.progress import progress_bar
from minarch.execute.trainer import PackTrainer
from minarch.execute.workspace import Workspace
from minarch.scratch import scratch_path
from minarch.spec import DatasetSpec, RunConfig
from minarch.store import Store, local_owner, open_store

POLL_SECONDS = 1.0
READY_POLL_SECONDS = 0.05
TASK_RETRIES = 3  # a pack whose worker or node dies is tried this many more times
CANCEL_GRACE_SECONDS = 30.0
DRIVER_POLL_SECONDS = 1.0


def import_ray() -> ModuleType:
    try:
        import ray
    except ImportError:
        raise OptionError(
            "executor", "ray", "Ray is not installed (pip install 'minarch[ray]')"
        ) from None
    return ray


def place_on_cluster(options: RayOptions, device: str, *, packs: int, db_url: str) -> Placement:
    """Connect to Ray (or start it here), check the store can be shared, size the packs."""
    if options.gpus_per_pack is not None and options.gpus_per_pack < 0:
        raise OptionError("gpus_per_pack", options.gpus_per_pack, "expected 0 or more")
    if options.cpus_per_pack is not None and options.cpus_per_pack <= 0:
        raise OptionError("cpus_per_pack", options.cpus_per_pack, "expected more than 0")
    ray = import_ray()
    if not ray.is_initialized():  # an API caller's own connection is used as it is
        if not options.address:
            # A new Ray on this machine keeps Ray's default, token authentication, but
            # chosen explicitly: Ray then does not warn about its default on every run.
            os.environ.setdefault("RAY_AUTH_MODE", "token")
        try:
            ray.init(
                address=options.address or "local",  # "local": never a dead cluster's leftovers
                num_cpus=None if options.address else usable_cores(),
                include_dashboard=False,
                log_to_driver=False,  # task failures come back as exceptions
                logging_level=logging.WARNING,
            )
        except Exception as exc:  # whatever Ray raises, the user gets one line
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if not options.address:
                raise OptionError("executor", "ray", f"cannot start Ray here ({reason})") from None
            raise OptionError(
                "address",
                options.address,
                f"cannot join Ray ({reason}); for HOST:PORT, "
                "set RAY_AUTH_MODE=token and copy the head's ~/.ray/auth_token here",
            ) from None
    nodes = [node for node in ray.nodes() if node["Alive"]]
    if db_url.startswith("sqlite") and len(nodes) > 1:
        raise OptionError(
            "db",
            db_url,
            f"the {len(nodes)} nodes of the Ray cluster cannot share a SQLite file; "
            "use PostgreSQL (postgresql+psycopg://user@host/db)",
        )
    gpus_available = sum(node["Resources"].get("GPU", 0) for node in nodes)
    gpus = _gpus_per_pack(device, options.gpus_per_pack, gpus_available)
    cpus = 1.0 if options.cpus_per_pack is None else options.cpus_per_pack
    slots = sum(_packs_on(node["Resources"], cpus, gpus) for node in nodes)
    if slots == 0:
        gpu_part = f" and {gpus:g} GPU" if gpus else ""
        raise OptionError(
            "cpus_per_pack", cpus, f"no node of the Ray cluster has {cpus:g} CPU{gpu_part} free"
        )
    return Placement(
        device=torch.device("cuda" if gpus else "cpu"),
        workers=max(1, min(slots, packs)),
        local_device=torch.device("cpu"),  # the driver only checks and shares data: no GPU copy
        ray=replace(options, gpus_per_pack=gpus, cpus_per_pack=cpus),
    )


def _gpus_per_pack(device: str, asked: float | None, available: float) -> float:
    """``--device`` is resolved on the cluster: auto means its GPUs when it has any."""
    if device == "cpu":
        if asked:
            raise OptionError("gpus_per_pack", asked, "packs train on the CPU (device cpu)")
        return 0.0
    if device == "cuda" and asked == 0:
        raise OptionError("gpus_per_pack", 0, "packs train on GPUs (device cuda)")
    gpus = (1.0 if available and device in ("auto", "cuda") else 0.0) if asked is None else asked
    if (gpus or device == "cuda") and not available:
        raise OptionError("device", device, "the Ray cluster has no GPU (train on cpu)")
    if gpus > 1 and gpus != int(gpus):
        raise OptionError("gpus_per_pack", gpus, "above 1, give a whole number of GPUs")
    return gpus


def _packs_on(resources: Mapping[str, float], cpus: float, gpus: float) -> int:
    """How many packs fit on one node at once."""
    fits = math.floor(resources.get("CPU", 0) / cpus + 1e-9)
    if gpus:
        fits = min(fits, math.floor(resources.get("GPU", 0) / gpus + 1e-9))
    return fits


@dataclass(frozen=True)
class Weights:
    """A run's weights file as the store records it, with its content."""

    path: str
    sha256: str
    content: bytes

    def place(self) -> None:
        """Write the file where the store says it is, unless this node has it already."""
        path = Path(self.path)
        if path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() == self.sha256:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = scratch_path(path)
        partial.write_bytes(self.content)
        os.replace(partial, path)


def stored_weights(store: Store, run_id: str) -> Weights | None:
    """The run's latest weights file with its content, if this node can read it."""
    records = [a for a in store.artifacts(run_id) if a.kind == "weights"]
    if not records:
        return None
    try:
        content = Path(records[-1].path).read_bytes()
    except OSError:
        return None
    return Weights(records[-1].path, records[-1].sha256, content)


def train_task(
    workspace: Workspace,
    owner: str,
    pack: Pack,
    configs: Mapping[str, RunConfig],
    evaluations: Evaluations,
    parent_states: Mapping[str, str],
    data: Dataset,
    parent: Weights | None,
    driver_node: str,
) -> list[Weights]:
    """One pack in a Ray worker: claim what is still pending, train and evaluate it.

    Returns the weights of the runs it trained when it ran on another node
    than the driver (the driver keeps a copy), else nothing.
    """
    torch.set_num_threads(workspace.threads)
    with closing(open_store(workspace.db_url)) as store, _ends_with_its_driver():
        store.release(owner, pack.run_ids)  # what a previous attempt of this task left running
        if parent is not None:
            parent.place()
        datasets = DatasetCache(workspace.data_dir, torch.device(workspace.device), download=False)
        datasets.add(pack.first.dataset, data)
        with progress_bar(Console(quiet=True)) as progress:
            trainer = PackTrainer(store, datasets, workspace, owner, progress, evaluations)
            claimed = claim_and_train(pack, configs, parent_states, trainer)
        if import_ray().get_runtime_context().get_node_id() == driver_node:
            return []
        return [w for w in (stored_weights(store, run_id) for run_id in claimed) if w]


@contextmanager
def _ends_with_its_driver() -> Iterator[None]:
    """Interrupt the task, as Ctrl-C would, once the driver that submitted it is gone.

    Ray usually stops a dead driver's tasks at once but sometimes lets a running
    one go on, while the next ``minarch run`` already takes the dead driver's
    runs back. Interrupted, the pack returns its unfinished runs to pending.
    """
    job = import_ray().get_runtime_context().get_job_id()
    ended = threading.Event()

    def watch() -> None:
        while not ended.wait(DRIVER_POLL_SECONDS):
            if _job_is_dead(job):
                _thread.interrupt_main()
                return

    threading.Thread(target=watch, daemon=True).start()
    try:
        yield
    finally:
        ended.set()


def _job_is_dead(job: str) -> bool:
    """Whether Ray's job table marks the job dead (its driver exited); Ray has no public call."""
    from ray._private.state import jobs

    return any(info["JobID"] == job and info["IsDead"] for info in jobs())


class RayExecutor(Executor):
    """One Ray task per pack; the store's claims decide what each task trains."""

    def __init__(self, workspace: Workspace, datasets: DatasetCache, options: RayOptions):
        # Tasks may run in another folder or on another machine: every path absolute.
        super().__init__(
            replace(
                workspace,
                db_url=_absolute(workspace.db_url),
                data_dir=workspace.data_dir.resolve(),
                artifacts=workspace.artifacts.resolve(),
            )
        )
        self.datasets, self.options = datasets, options
        self.owner = local_owner()
        self.owners.add(self.owner)
        self._task = import_ray().remote(train_task)
        self._shared: dict[DatasetSpec, Any] = {}  # dataset -> its object in Ray's store

    @property
    def description(self) -> str:
        gpus = self.options.gpus_per_pack
        asks = f"{self.options.cpus_per_pack:g} CPU" + (f" + {gpus:g} GPU" if gpus else "")
        return f"Ray, {self.workspace.workers} packs at a time × {asks}"

    def train(
        self,
        study: str,
        configs: Mapping[str, RunConfig],
        evaluations: Evaluations,
        store: Store,
        console: Console,
    ) -> None:
        store.reclaim(study=study, stale_after=STALE_AFTER_SECONDS)
        pending = [r.id for r in store.runs(study=study, states=["pending"]) if r.id in configs]
        waiting = packs_of(configs, pending)
        running: dict[Any, Pack] = {}  # task's result -> its pack
        todo = _unfinished(store, study)
        try:
            with progress_bar(console) as progress:
                bar = progress.add_task(f"runs ({self.description})", total=todo)
                while waiting or running:
                    states = {r.id: r.state for r in store.runs(study=study)}
                    for pack in [p for p in waiting if parent_state(p.first, states) != "waiting"]:
                        waiting.remove(pack)
                        task = self._submit(pack, configs, evaluations, states, store)
                        running[task] = pack
                    if running:
                        for result in _ready(list(running)):
                            self._collect(result, running.pop(result), store, console)
                    elif any(states.get(p.first.derived.parent) == "running" for p in waiting):
                        time.sleep(POLL_SECONDS)  # parents train in another process
                    else:
                        break  # parents nobody trains: leave their children pending
                    progress.update(bar, completed=todo - _unfinished(store, study))
        except BaseException:
            self._cancel(list(running), store)
            raise

    def _submit(
        self,
        pack: Pack,
        configs: Mapping[str, RunConfig],
        evaluations: Evaluations,
        states: Mapping[str, str],
        store: Store,
    ) -> Any:
        ray = import_ray()
        needed = {c.id: c for c in pack.configs}
        parent_states: dict[str, str] = {}
        parent = None
        if pack.first.derived is not None:
            parent_id = pack.first.derived.parent
            needed[parent_id] = configs[parent_id]
            parent_states[parent_id] = states.get(parent_id, "missing")
            parent = stored_weights(store, parent_id)
        task = self._task.options(
            num_cpus=self.options.cpus_per_pack,
            num_gpus=self.options.gpus_per_pack,
            max_retries=TASK_RETRIES,
            retry_exceptions=False,  # an error in training fails the runs, as in any executor
            name=f"minarch {pack.label}",
        )
        return task.remote(
            self.workspace,
            self.owner,
            pack,
            needed,
            {run_id: evaluations[run_id] for run_id in pack.run_ids if run_id in evaluations},
            parent_states,
            self._shared_data(pack.first.dataset),
            parent,
            ray.get_runtime_context().get_node_id(),
        )

    def _shared_data(self, spec: DatasetSpec) -> Any:
        """Each dataset goes into Ray's object store once, from the driver's memory."""
        if spec not in self._shared:
            self._shared[spec] = import_ray().put(self.datasets.get(spec))
        return self._shared[spec]

    def _collect(self, result: Any, pack: Pack, store: Store, console: Console) -> None:
        ray = import_ray()
        try:
            weights = ray.get(result)
        except ray.exceptions.RayTaskError as exc:  # raised by the training code: as in-process
            raise (exc.cause or exc) from None
        except ray.exceptions.RayError as exc:  # the task's worker or node died, retries spent
            released = store.release(self.owner, pack.run_ids)
            console.print(
                f"[yellow]pack {pack.label}: its Ray task failed {TASK_RETRIES + 1} times "
                f"({type(exc).__name__}); {len(released)} runs back to pending[/yellow]"
            )
            return
        for each in weights:
            each.place()

    def _cancel(self, results: list[Any], store: Store) -> None:
        """Stop every task of this driver and return their runs to pending."""
        ray = import_ray()
        for result in results:
            ray.cancel(result, force=True)
        if results:
            ray.wait(results, num_returns=len(results), timeout=CANCEL_GRACE_SECONDS)
        store.release(self.owner)


def _ready(results: list[Any]) -> list[Any]:
    """The results ready within ``POLL_SECONDS``.

    Waits in Python's sleep rather than in Ray's wait, which turns whatever a
    signal handler raises into a plain KeyboardInterrupt: SIGTERM must stay
    ``Interrupted(SIGTERM)`` (exit 143).
    """
    ray = import_ray()
    deadline = time.monotonic() + POLL_SECONDS
    while True:
        done, _ = ray.wait(results, num_returns=len(results), timeout=0)
        if done or time.monotonic() > deadline:
            return done
        time.sleep(READY_POLL_SECONDS)


def _absolute(db_url: str) -> str:
    """A SQLite URL with an absolute file path, so it means the same file in any folder."""
    prefix = "sqlite:///"
    if not db_url.startswith(prefix) or db_url == f"{prefix}:memory:":
        return db_url
    return prefix + str(Path(db_url.removeprefix(prefix)).resolve())


def _unfinished(store: Store, study: str) -> int:
    return len(store.runs(study=study, states=["pending", "running", "failed"]))
