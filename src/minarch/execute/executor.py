"""The executor interface, and the executor that trains in this process.

An executor trains the pending runs of a study. It decides nothing about
what is done: the store's atomic claims do, so executors of different kinds
(in-process, worker processes, a Ray cluster) and hand-started ``minarch run``
processes can share one study without training a run twice. Registering the
study, evaluating, extending the grid and reporting sit above it, in
``execute.study``, written once for every executor.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from contextlib import closing

import torch
from rich.console import Console

from minarch.execute.claims import train_pending
from minarch.execute.datasets import DatasetCache
from minarch.execute.evaluate import Evaluations
from minarch.execute.policy import intra_op_threads
from minarch.execute.progress import progress_bar
from minarch.execute.trainer import PackTrainer
from minarch.execute.workspace import Workspace
from minarch.spec import RunConfig
from minarch.store import Store, local_owner, open_store


class Executor(abc.ABC):
    """Trains a study's pending runs with the resources of one ``Workspace``."""

    def __init__(self, workspace: Workspace):
        self.workspace = workspace
        # The owner strings this executor has claimed runs under. The store keeps a
        # finished run's owner, so a driver tells the runs it trained from another's.
        self.owners: set[str] = set()

    @abc.abstractmethod
    def train(
        self,
        study: str,
        configs: Mapping[str, RunConfig],
        evaluations: Evaluations,
        store: Store,
        console: Console,
    ) -> None:
        """Train every pending run of ``study`` whose config is in ``configs``.

        The trainer of a pack measures its runs' ``evaluations`` as soon as the
        pack is trained, on the same worker.

        Returns when no run is left that this executor can train (children of
        parents nobody trains stay pending). On SIGINT or SIGTERM it returns its
        claimed runs to pending and raises ``KeyboardInterrupt``.
        """

    @property
    def description(self) -> str:
        """How the header line describes the executor, e.g. '2 workers x 1 thread'."""
        workers, threads = self.workspace.workers, self.workspace.threads
        return f"{workers} worker{'s' * (workers > 1)} × {threads} thread{'s' * (threads > 1)}"


class InProcessExecutor(Executor):
    """Trains pack after pack in this process, showing one bar per pack."""

    def __init__(self, workspace: Workspace, datasets: DatasetCache | None = None):
        super().__init__(workspace)
        self.datasets = datasets or DatasetCache(
            workspace.data_dir, torch.device(workspace.device), download=workspace.download
        )

    def train(
        self,
        study: str,
        configs: Mapping[str, RunConfig],
        evaluations: Evaluations,
        store: Store,
        console: Console,
    ) -> None:
        todo = len(store.runs(study=study, states=["pending", "running", "failed"]))
        with intra_op_threads(self.workspace.threads), progress_bar(console) as progress:
            runs_task = progress.add_task("runs", total=todo)
            owner = local_owner()
            self.owners.add(owner)
            trainer = PackTrainer(
                store, self.datasets, self.workspace, owner, progress, evaluations
            )
            train_pending(study, configs, trainer, runs_task=runs_task)


def train_in_worker(
    workspace: Workspace,
    study: str,
    configs: Mapping[str, RunConfig],
    evaluations: Evaluations,
) -> None:
    """One trainer with its own store connection and datasets: what each worker process runs."""
    torch.set_num_threads(workspace.threads)
    device = torch.device(workspace.device)
    with closing(open_store(workspace.db_url)) as store:
        datasets = DatasetCache(workspace.data_dir, device, download=workspace.download)
        quiet = Console(quiet=True)
        with progress_bar(quiet) as progress:
            trainer = PackTrainer(store, datasets, workspace, local_owner(), progress, evaluations)
            train_pending(study, configs, trainer)
