"""The store's contract: frozen records and the abstract ``Store``.

Everything outside this package talks to the run database through these
names only, so a second backend (or a test double) needs nothing else.
"""

from __future__ import annotations

import abc
import os
import socket
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from minarch.scratch import process_is_gone

RUN_STATES = ("pending", "running", "done", "failed", "diverged")
FINISHED_STATES = ("done", "failed", "diverged")
EPOCH_METRICS = (
    "train_loss",
    "train_acc",
    "train_eval_loss",
    "train_eval_acc",
    "val_loss",
    "val_acc",
    "val_top5",
    "lr",
    "wall_time",
)


def local_owner() -> str:
    """The owner string of this process, ``"{hostname}:{pid}"``.

    ``owner_is_gone`` parses it to tell whether a local owner has died.
    """
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_is_gone(owner: str | None) -> bool:
    """True only for a ``local_owner`` of this host whose process has ended."""
    host, _, pid = (owner or "").rpartition(":")
    return pid.isdigit() and process_is_gone(host, int(pid))


@dataclass(frozen=True)
class NewRun:
    """A run as the planner registers it; ``id`` is the caller's content hash."""

    id: str
    pack_key: str
    config: dict[str, Any]
    dataset: str
    family: str
    model: str
    lr: float
    weight_decay: float
    seed: int
    params: int
    flops: int  # per-sample forward FLOPs (2 x MACs)
    parent_id: str | None = None  # the trained run a derived run starts from
    variant: str = "base"  # what was done to the parent, e.g. "retrain structured-global 0.6"


@dataclass(frozen=True, kw_only=True)
class RunRecord(NewRun):
    """A snapshot of one run; changing it never changes the database."""

    state: str
    owner: str | None
    heartbeat_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    message: str | None
    metrics: dict[str, Any]
    engine: str | None
    environment: dict[str, Any]


@dataclass(frozen=True)
class ArtifactRecord:
    """A file a run produced (weights, exports), with its checksum; ``path`` is absolute."""

    run_id: str
    kind: str
    path: str
    sha256: str
    size: int
    created_at: datetime


@dataclass(frozen=True)
class EvaluationRecord:
    """A measurement of a trained run without training (docs/methods.md A.3-A.4)."""

    run_id: str
    key: str
    setting: dict[str, Any]  # what was done: {"kind": "prune", "method": ..., ...}
    metrics: dict[str, Any]  # val_acc, val_loss, params, flops, latency_ms, size_bytes, ...
    created_at: datetime


class Store(abc.ABC):
    """The run database: the single source of truth for studies and runs.

    Every write is one transaction: when it raises, nothing changed. Timestamps
    are timezone-aware UTC. Methods raise ``StoreError`` when the database
    cannot be reached or names an unknown study or run, and ``ValueError`` for
    arguments that only a bug can produce (an unknown state or metric name).
    """

    @property
    @abc.abstractmethod
    def id(self) -> str:
        """A name no other store has, kept for the store's life.

        Run ids are the same in every store, so each store writes its files
        into a folder of this name: deleting one store's runs never deletes
        another's files.
        """

    @abc.abstractmethod
    def register_study(self, name: str, spec_text: str, runs: Sequence[NewRun]) -> int:
        """Create or update study ``name`` and link ``runs`` to it.

        Runs not yet in the store are added as pending; known runs keep their
        state, so re-registering a study resumes it. Returns how many runs
        were new.
        """

    @abc.abstractmethod
    def studies(self) -> list[str]:
        """Names of all studies, sorted."""

    @abc.abstractmethod
    def study_spec(self, name: str) -> str:
        """The YAML text last registered for ``name``; ``StoreError`` if unknown."""

    @abc.abstractmethod
    def runs(
        self, *, study: str | None = None, states: Collection[str] | None = None
    ) -> list[RunRecord]:
        """Runs in registration order, optionally of one study and in some states."""

    @abc.abstractmethod
    def claim(self, run_ids: Sequence[str], owner: str) -> list[str]:
        """Move those of ``run_ids`` still pending to running under ``owner``.

        Atomic per run across processes and machines: each run is claimed by
        exactly one caller. Returns the ids this call claimed.
        """

    @abc.abstractmethod
    def heartbeat(self, run_ids: Sequence[str], owner: str) -> None:
        """Mark ``owner``'s running runs as alive; runs it no longer owns are skipped."""

    @abc.abstractmethod
    def reclaim(self, *, study: str | None, stale_after: float) -> list[str]:
        """Return abandoned and failed runs to pending so they train again.

        A running run is abandoned when its heartbeat is older than
        ``stale_after`` seconds or its owner is a dead process on this host.
        Reclaimed runs lose their epochs and results. Returns their ids.
        """

    @abc.abstractmethod
    def release(self, owner: str, run_ids: Sequence[str] | None = None) -> list[str]:
        """Return ``owner``'s running runs (all, or those in ``run_ids``) to pending.

        For an interrupted or dead trainer: its runs train again next time,
        neither "failed" nor stuck "running". Their epochs and evaluations go.
        Returns the released ids.
        """

    @abc.abstractmethod
    def record_epoch(self, run_id: str, epoch: int, metrics: Mapping[str, float]) -> None:
        """Store (or replace) one epoch's curve point; keys from ``EPOCH_METRICS``."""

    @abc.abstractmethod
    def finish(
        self,
        run_id: str,
        state: str,
        *,
        metrics: Mapping[str, float] | None = None,
        message: str | None = None,
        engine: str | None = None,
        environment: Mapping[str, Any] | None = None,
        params: int | None = None,
        flops: int | None = None,
    ) -> None:
        """End a run as done, failed or diverged, with its final metrics.

        ``params`` and ``flops`` replace the planned sizes (a pruned model's
        are known only once its parent is pruned). Non-finite metric values
        are stored as missing (JSON cannot hold them).
        """

    @abc.abstractmethod
    def add_artifact(self, run_id: str, kind: str, path: str, sha256: str, size: int) -> None:
        """Record a file of ``run_id``; the same kind and path again replaces it.

        A relative ``path`` is taken from the working directory. A file-backed
        store records paths under its own folder relative to that folder, so
        the store and its files can move together; any other path is recorded
        absolute. Either way it never depends on where a later command runs.
        """

    @abc.abstractmethod
    def artifacts(self, run_id: str | None = None) -> list[ArtifactRecord]:
        """The files recorded for ``run_id`` (every run's when None), oldest first."""

    @abc.abstractmethod
    def record_evaluation(
        self, run_id: str, key: str, setting: Mapping[str, Any], metrics: Mapping[str, Any]
    ) -> None:
        """Store (or replace) the evaluation ``key`` of a trained run."""

    @abc.abstractmethod
    def evaluations(self, *, study: str | None = None) -> list[EvaluationRecord]:
        """Evaluations of the study's runs (all runs when None), in run order.

        A run that is reclaimed to train again loses its evaluations.
        """

    @abc.abstractmethod
    def delete_runs(self, study: str, run_ids: Sequence[str]) -> list[ArtifactRecord]:
        """Take ``run_ids`` out of ``study``, deleting each run no other study holds.

        A deleted run goes with its epochs, evaluations and artifact records;
        the artifacts of deleted runs are returned so the caller can remove
        their files. A study left without runs is deleted too. Every run
        derived from a listed run must be listed as well: a derived run
        without its parent could neither train nor be analysed. Raises
        ``StoreError`` for an unknown study, a run not in it, or a derived run
        left out, and changes nothing then.
        """

    @abc.abstractmethod
    def status(self) -> pd.DataFrame:
        """Run counts per study and state (plus ``total``), one row per study."""

    @abc.abstractmethod
    def runs_frame(self, *, study: str | None = None) -> pd.DataFrame:
        """One row per run and study: identity, ``config.*`` columns, metrics, times."""

    @abc.abstractmethod
    def epochs_frame(self, *, study: str | None = None) -> pd.DataFrame:
        """One row per recorded epoch: ``run_id``, ``epoch`` and ``EPOCH_METRICS``."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections; the store is unusable afterwards."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
