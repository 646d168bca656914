"""The claim loop every trainer runs: claim a pack from the store, train it, repeat.

The store is the only shared state: runs are claimed before training, so
several trainers (processes, machines on PostgreSQL, Ray
tasks) can work on one study, and a dead trainer's runs are reclaimed by the
next one. A derived run's pack waits until its parent has finished (here or
elsewhere); a child of a failed or diverged parent fails with that reason.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from rich.progress import TaskID

from minarch.execute.pack import Pack, group_packs
from minarch.execute.workspace import Workspace
from minarch.spec import RunConfig
from minarch.store import Store, owner_is_gone

if TYPE_CHECKING:
    from minarch.execute.trainer import PackTrainer

STALE_AFTER_SECONDS = 120.0
PARENT_POLL_SECONDS = 2.0


def train_pending(
    study: str,
    configs: Mapping[str, RunConfig],
    trainer: PackTrainer,
    *,
    runs_task: TaskID | None = None,
) -> None:
    """Claim and train every pending run of ``study`` whose config is in ``configs``."""
    store = trainer.store
    store.reclaim(study=study, stale_after=STALE_AFTER_SECONDS)
    pending = {r.id for r in store.runs(study=study, states=["pending"]) if r.id in configs}
    packs = claimable_packs(configs, pending, trainer.workspace)
    while packs:
        states = {r.id: r.state for r in store.runs(study=study)}
        ready = [p for p in packs if parent_state(p.first, states) != "waiting"]
        if not ready:
            blocking = {p.first.derived.parent for p in packs}
            if not any(states.get(parent) == "running" for parent in blocking):
                return  # parents nobody trains: leave their children pending
            time.sleep(PARENT_POLL_SECONDS)  # parents train in another process
            continue
        for pack in ready:
            packs.remove(pack)
            claim_and_train(pack, configs, states, trainer)
            if runs_task is not None:
                trainer.progress.advance(runs_task, len(pack.run_ids))


def trained_elsewhere(store: Store, study: str, configs: Mapping[str, RunConfig]) -> int:
    """How many runs of ``configs`` another trainer holds and is still training.

    Its heartbeat is recent and its process, if on this host, alive; a
    trainer that died leaves runs the next claim loop reclaims instead.
    """
    cutoff = datetime.now(timezone.utc) - timedelta(seconds=STALE_AFTER_SECONDS)
    return sum(
        run.id in configs
        and run.heartbeat_at is not None
        and run.heartbeat_at > cutoff
        and not owner_is_gone(run.owner)
        for run in store.runs(study=study, states=["running"])
    )


def claimable_packs(
    configs: Mapping[str, RunConfig], pending: set[str], workspace: Workspace
) -> list[Pack]:
    """The pending part of each pack, cut per worker on a CPU (``split_for_workers``).

    The study's whole packs are cut, not what is pending of them, so every
    worker cuts them alike: one that starts after another's claim takes the
    other part rather than half of it.
    """
    import torch  # here, not at the top: a driver with nothing to train needs no torch

    from minarch.execute.policy import split_for_workers

    parts = split_for_workers(
        group_packs(configs.values()),
        torch.device(workspace.device),
        workspace.workers,
        workspace.engine,
    )
    return [part.only(pending) for part in parts if pending.intersection(part.run_ids)]


def claim_and_train(
    pack: Pack, configs: Mapping[str, RunConfig], states: Mapping[str, str], trainer: PackTrainer
) -> list[str]:
    """Claim what is still pending of ``pack`` and train it; returns the ids claimed.

    ``states`` must hold the state of the pack's parent (if it has one).
    """
    claimed = trainer.store.claim(pack.run_ids, trainer.owner)
    if claimed:
        _train_or_fail(pack.only(claimed), configs, states, trainer)
    return claimed


def _train_or_fail(
    pack: Pack, configs: Mapping[str, RunConfig], states: Mapping[str, str], trainer: PackTrainer
) -> None:
    parent = parent_state(pack.first, states)
    if parent != "ready":
        for run_id in pack.run_ids:
            trainer.store.finish(run_id, "failed", message=parent)
        return
    derived = pack.first.derived
    trainer.train(pack, configs[derived.parent] if derived else None)


def parent_state(config: RunConfig, states: Mapping[str, str]) -> str:
    """'ready', 'waiting', or why the children cannot train (their parent's fate)."""
    if config.derived is None:
        return "ready"
    parent = config.derived.parent
    state = states.get(parent, "missing")
    if state == "done":
        return "ready"
    if state in ("pending", "running"):
        return "waiting"
    return f"parent run {parent} is {state}"
