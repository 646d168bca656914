"""The executors by name: where packs train, and the executor that trains them.

``local`` trains on this machine: in this process for one worker (sharing its
loaded datasets), else in worker processes. ``ray`` trains on a Ray cluster
(``pip install 'minarch[ray]'``); Ray is imported only when asked for.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from minarch.errors import OptionError
from minarch.execute.datasets import DatasetCache
from minarch.execute.executor import Executor, InProcessExecutor
from minarch.execute.policy import resolve_device, resolve_workers
from minarch.execute.workers import WorkerExecutor
from minarch.execute.workspace import Workspace
from minarch.spec.schema import ExecutionSpec

EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class RayOptions:
    """The cluster to train on, and what each pack asks of it."""

    address: str | None = None  # None: a Ray instance on this machine; "auto" or HOST:PORT: join
    gpus_per_pack: float | None = None  # None: 1 when packs train on GPUs, else 0
    cpus_per_pack: float | None = None  # None: 1


@dataclass(frozen=True)
class Placement:
    """Where packs train and how many at once, decided before anything is written."""

    device: torch.device  # where packs train
    workers: int  # packs training at once
    local_device: torch.device  # where this process checks data and runs missing evaluations
    ray: RayOptions | None = None  # Ray's, with every resource filled in


def place(
    kind: str,
    *,
    device: str,
    workers: int | str,
    packs: int,
    runs: int,
    ray: RayOptions,
    execution: ExecutionSpec,
    db_url: str,
) -> Placement:
    """Decide where the study's ``packs`` train and how many at once (Ray: on its cluster).

    ``ray`` holds what the user asked for on the command line; the study
    file's ``execution:`` section fills in the rest.
    """
    if kind not in EXECUTORS:
        raise OptionError("executor", kind, f"expected one of {', '.join(EXECUTORS)}")
    if kind == "ray":
        from minarch.execute.ray_executor import place_on_cluster

        if workers != "auto":
            raise OptionError("workers", workers, "Ray places the packs itself (see cpus per pack)")
        asked = RayOptions(
            ray.address,
            execution.gpus_per_pack if ray.gpus_per_pack is None else ray.gpus_per_pack,
            execution.cpus_per_pack if ray.cpus_per_pack is None else ray.cpus_per_pack,
        )
        return place_on_cluster(asked, device, packs=packs, db_url=db_url)
    if ray != RayOptions():
        option, value = next((k, v) for k, v in asdict(ray).items() if v is not None)
        raise OptionError(option, value, f"only with the Ray executor, not {kind}")
    torch_device = resolve_device(device)
    count = resolve_workers(workers, torch_device, packs=packs, runs=runs)
    return Placement(torch_device, count, torch_device)


def make_executor(placement: Placement, workspace: Workspace, datasets: DatasetCache) -> Executor:
    """The executor of ``placement``; ``datasets`` is this process's (shared when it can be)."""
    if placement.ray is not None:
        from minarch.execute.ray_executor import RayExecutor

        return RayExecutor(workspace, datasets, placement.ray)
    if workspace.workers == 1:
        return InProcessExecutor(workspace, datasets)
    return WorkerExecutor(workspace)
