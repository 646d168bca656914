"""Train one claimed pack and record everything about it in the store.

Whatever happens, no claimed run is left "running": finished members are
stored as they finish, an interruption returns the rest to pending, and any
other error marks them failed with its reason.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import socket
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from rich.progress import Progress
from torch import nn

import minarch
from minarch.data import Dataset
from minarch.errors import MinarchError, PruneError, QuantError, WeightsError
from minarch.execute.datasets import DatasetCache
from minarch.execute.derived import derived_start, ordinary_start
from minarch.execute.evaluate import Evaluations, evaluate_run
from minarch.execute.pack import Pack
from minarch.execute.workspace import Workspace, weights_dir
from minarch.models import count_flops, count_parameters
from minarch.prune import save_pruned
from minarch.scratch import scratch_path
from minarch.spec import RunConfig
from minarch.store import EPOCH_METRICS, Store
from minarch.train import EpochRecord, Hooks, Member, MemberResult, train_pack

HEARTBEAT_SECONDS = 10.0


@dataclass(frozen=True)
class PackTrainer:
    """Trains claimed packs of one trainer (``owner``) into ``store``, then evaluates them."""

    store: Store
    datasets: DatasetCache
    workspace: Workspace
    owner: str
    progress: Progress
    evaluations: Evaluations = field(default_factory=dict)

    def train(self, pack: Pack, parent: RunConfig | None) -> None:
        """Train ``pack`` and measure its finished runs' evaluations.

        Each member's results are stored as it finishes; the evaluations
        follow the whole pack, so no run waits in "running" for them.
        """
        for config in self._train(pack, parent):
            settings = self.evaluations.get(config.id, ())
            if settings:
                data = self.datasets.get(config.dataset)
                evaluate_run(config, settings, self.store, data)

    def _train(self, pack: Pack, parent: RunConfig | None) -> list[RunConfig]:
        """Train ``pack``; returns the configs of the runs that finished "done"."""
        store, progress = self.store, self.progress
        unfinished = set(pack.run_ids)
        done: list[RunConfig] = []

        def end(run_id: str, state: str, message: str | None = None, **results) -> None:
            store.finish(run_id, state, message=message, **results)
            unfinished.discard(run_id)

        hooks = StoreHooks(store, progress, pack, self.owner)
        try:
            data = self.datasets.get(pack.first.dataset)
            if parent is None:
                start = ordinary_start(pack.first, data)
            else:
                try:
                    start = derived_start(pack.first, parent, store, data)
                except (PruneError, QuantError, WeightsError) as exc:  # this pack, not the study
                    for run_id in pack.run_ids:
                        end(run_id, "failed", str(exc))
                    progress.console.print(f"[red]{pack.label} failed[/red]: {exc}")
                    return done
            device = self.datasets.device
            for result in train_pack(
                make_model=start.make_model,
                members=pack.members(),
                recipe=pack.recipe(),
                data=data,
                device=device,
                hooks=hooks,
                engine=self.workspace.engine if start.engine == "auto" else start.engine,
                deterministic=self.workspace.deterministic,
                memory_share=self.workspace.memory_share,
            ):
                config = next(c for c in pack.configs if c.id == result.key)
                model = start.finished(result.state_dict) if parent is not None else None
                folder = weights_dir(self.workspace.artifacts, store)
                path, sha256, size = save_weights(result, folder, config, model, data)
                store.add_artifact(result.key, "weights", str(path), sha256, size)
                end(
                    result.key,
                    result.state,
                    result.message,
                    metrics=run_metrics(result.epochs),
                    engine=result.engine,
                    environment=environment(device, self.workspace)
                    | {"memory_format": result.memory_format.removeprefix("torch.")},
                    **({} if model is None else measured_size(model, data)),
                )
                if result.state == "done":
                    done.append(config)
        except KeyboardInterrupt:
            store.release(self.owner, sorted(unfinished))  # pending: the next run resumes them
            raise
        except BaseException as exc:
            reason = f"{type(exc).__name__}: {exc}"
            for run_id in sorted(unfinished):
                end(run_id, "failed", reason)
            if isinstance(exc, MinarchError) or not isinstance(exc, Exception):
                raise
            progress.console.print(f"[red]pack {pack.label} failed[/red]: {reason}")
        finally:
            progress.remove_task(hooks.task)
        return done


class StoreHooks(Hooks):
    """Curves into the store, heartbeats for the whole pack, one progress bar per pack.

    Engines call ``on_step`` once per step with the members it trained (one in
    the plain loop, the live fleet in the others); the bar counts member-steps
    and every heartbeat covers every run of the pack.
    """

    def __init__(self, store: Store, progress: Progress, pack: Pack, owner: str):
        self.store, self.progress, self.owner = store, progress, owner
        self.run_ids = pack.run_ids
        self.epochs = pack.first.training.epochs
        self.task = progress.add_task(f"  {pack.label}", total=None)
        self.last_beat = time.monotonic()
        self.sized = False

    def on_step(
        self, members: Sequence[Member], epoch: int, step: int, steps_per_epoch: int
    ) -> None:
        if not self.sized:  # steps per epoch are known from the first step on
            total = len(self.run_ids) * self.epochs * steps_per_epoch
            self.progress.update(self.task, total=total)
            self.sized = True
        self.progress.advance(self.task, len(members))
        if time.monotonic() - self.last_beat > HEARTBEAT_SECONDS:
            self.store.heartbeat(self.run_ids, self.owner)
            self.last_beat = time.monotonic()

    def on_epoch(self, member: Member, record: EpochRecord) -> None:
        self.store.record_epoch(member.key, record.epoch, _epoch_metrics(record))


def _epoch_metrics(record: EpochRecord) -> dict[str, float]:
    return {name: getattr(record, name) for name in EPOCH_METRICS}


def measured_size(model: nn.Module, data: Dataset) -> dict[str, int]:
    """A derived run's real size: pruning changes it from the planned one."""
    return {
        "params": count_parameters(model),
        "flops": count_flops(model, data.info.input_shape),
    }


def run_metrics(epochs: Iterable[EpochRecord]) -> dict[str, float]:
    """Summary metrics of a run from its curve (empty if it stopped before epoch 1)."""
    epochs = list(epochs)
    if not epochs:
        return {}
    last = epochs[-1]
    best = max(epochs, key=lambda r: r.val_acc)
    return {
        "final_train_loss": last.train_loss,
        "final_train_acc": last.train_acc,
        "final_train_eval_loss": last.train_eval_loss,
        "final_train_eval_acc": last.train_eval_acc,
        "final_val_loss": last.val_loss,
        "final_val_acc": last.val_acc,
        "final_val_top5": last.val_top5,
        "best_val_acc": best.val_acc,
        "best_epoch": best.epoch,
        "train_seconds": last.wall_time,
    }


def save_weights(
    result: MemberResult,
    artifacts: Path,
    config: RunConfig,
    model: nn.Module | None,
    data: Dataset,
) -> tuple[Path, str, int]:
    """Write atomically (temp file, rename) so a kill never leaves half a file.

    An ordinary run saves its state dict; a derived run (``model`` given) saves
    it with its layer widths, since pruning changes the architecture.
    """
    artifacts.mkdir(parents=True, exist_ok=True)
    path = artifacts / f"{result.key}.pt"
    partial = scratch_path(path)
    if model is None:
        torch.save(result.state_dict, partial)
    else:
        save_pruned(
            model,
            partial,
            family=config.model.family,
            config=config.model.config,
            input_shape=data.info.input_shape,
            num_classes=data.info.num_classes,
        )
    content = partial.read_bytes()
    os.replace(partial, path)
    return path, hashlib.sha256(content).hexdigest(), len(content)


@functools.cache
def source_commit() -> str | None:
    """The git commit minarch runs from (a source checkout), '-dirty' if edited; else None."""
    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=12"],
            cwd=Path(minarch.__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def environment(device: torch.device, workspace: Workspace) -> dict[str, str | int]:
    """Enough to trace a number back to the software, hardware and policy that made it."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    return {
        "minarch": minarch.__version__,
        "git": source_commit(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(device),
        "device_name": name or platform.machine(),
        "threads": torch.get_num_threads(),
        "workers": workspace.workers,
        "deterministic": workspace.deterministic,
        "host": socket.gethostname(),
    }
