"""Train a study's unfinished runs in this process, pack by pack.

The store is the only shared state: runs are claimed before training, so
several processes (or machines on PostgreSQL) can work on one study, and a
killed process's runs are reclaimed by the next one.
"""

from __future__ import annotations

import hashlib
import os
import platform
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import nn

import minarch
from minarch.data import Dataset, load_dataset, split_dataset
from minarch.errors import MinarchError, PruneError, QuantError
from minarch.execute.derived import derived_start, ordinary_start
from minarch.models import count_flops, count_parameters, describe
from minarch.prune import save_pruned
from minarch.spec import DatasetSpec, RunConfig
from minarch.store import Store, local_owner
from minarch.train import EpochRecord, Hooks, Member, MemberResult, Recipe, train_pack

HEARTBEAT_SECONDS = 10.0
STALE_AFTER_SECONDS = 120.0
PARENT_POLL_SECONDS = 2.0


@dataclass
class Summary:
    trained: dict[str, int] = field(default_factory=dict)  # state -> count
    seconds: float = 0.0

    def add(self, state: str) -> None:
        self.trained[state] = self.trained.get(state, 0) + 1


class DatasetCache:
    """Each dataset split is loaded once per process, on the training device."""

    def __init__(self, data_dir: Path, device: torch.device, *, download: bool = True):
        self.data_dir, self.device, self.download = data_dir, device, download
        self._loaded: dict[DatasetSpec, Dataset] = {}

    def get(self, spec: DatasetSpec) -> Dataset:
        if spec not in self._loaded:
            full = load_dataset(
                spec.name,
                self.data_dir,
                download=self.download,
                path=Path(spec.path) if spec.path else None,
                image_size=spec.image_size,
            )
            split = split_dataset(
                full, train_fraction=spec.train_fraction, validation=spec.validation
            )
            self._loaded[spec] = split.to(self.device)
        return self._loaded[spec]


def execute(
    study: str,
    configs: dict[str, RunConfig],
    store: Store,
    datasets: DatasetCache,
    artifacts: Path,
    *,
    console: Console,
) -> Summary:
    """Claim and train every unfinished run of ``study`` whose config is in ``configs``.

    A derived run's pack waits until its parent has finished (in this process
    or another); a child of a failed or diverged parent fails with that reason.
    """
    summary, started = Summary(), time.perf_counter()
    store.reclaim(study=study, stale_after=STALE_AFTER_SECONDS)
    pending = [r.id for r in store.runs(study=study, states=["pending"]) if r.id in configs]
    packs: dict[str, list[str]] = {}
    for run_id in pending:
        packs.setdefault(configs[run_id].pack_key, []).append(run_id)
    with progress_bar(console) as progress:
        runs_task = progress.add_task("runs", total=len(pending))
        while packs:
            states = {r.id: r.state for r in store.runs(study=study)}
            ready = [
                key
                for key, run_ids in packs.items()
                if _parents_state(configs[run_ids[0]], states) != "waiting"
            ]
            if not ready:
                blocking = {configs[ids[0]].derived.parent for ids in packs.values()}
                if not any(states.get(parent) == "running" for parent in blocking):
                    break  # parents nobody trains: leave their children pending
                time.sleep(PARENT_POLL_SECONDS)  # parents train in another process
                continue
            for key in ready:
                run_ids = packs.pop(key)
                claimed = store.claim(run_ids, local_owner())
                if claimed:
                    pack = [configs[i] for i in claimed]
                    parent = _parents_state(pack[0], states)
                    if parent == "ready":
                        _train_claimed(pack, configs, store, datasets, artifacts, progress, summary)
                    else:
                        for run_id in claimed:
                            store.finish(run_id, "failed", message=parent)
                            summary.add("failed")
                progress.advance(runs_task, len(run_ids))
    summary.seconds = time.perf_counter() - started
    return summary


def _parents_state(config: RunConfig, states: dict[str, str]) -> str:
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


def _train_claimed(
    pack: list[RunConfig],
    configs: dict[str, RunConfig],
    store: Store,
    datasets: DatasetCache,
    artifacts: Path,
    progress: Progress,
    summary: Summary,
) -> None:
    """Train one claimed pack; whatever happens, no claimed run stays 'running'."""
    first = pack[0]
    unfinished = {c.id for c in pack}
    hooks = _StoreHooks(store, progress, pack)
    try:
        data = datasets.get(first.dataset)
        members = [Member(c.id, c.training.lr, c.training.weight_decay, c.seed) for c in pack]
        recipe = Recipe(**first.training.model_dump(exclude={"lr", "weight_decay"}))
        if first.derived is None:
            start = ordinary_start(first, data)
        else:
            try:
                start = derived_start(first, configs[first.derived.parent], store, data)
            except (PruneError, QuantError) as exc:  # this pack's setting, not the study, failed
                for run_id in unfinished:
                    store.finish(run_id, "failed", message=str(exc))
                    summary.add("failed")
                progress.console.print(f"[red]{_label(pack).strip()} failed[/red]: {exc}")
                return
        for result in train_pack(
            make_model=start.make_model,
            members=members,
            recipe=recipe,
            data=data,
            device=datasets.device,
            hooks=hooks,
            engine=start.engine,
        ):
            model = start.finished(result.state_dict) if first.derived else None
            _finish(store, result, artifacts, datasets.device, configs[result.key], model, data)
            unfinished.discard(result.key)
            summary.add(result.state)
    except BaseException as exc:
        reason = (
            "interrupted" if isinstance(exc, KeyboardInterrupt) else f"{type(exc).__name__}: {exc}"
        )
        for run_id in unfinished:
            store.finish(run_id, "failed", message=reason)
            summary.add("failed")
        if isinstance(exc, KeyboardInterrupt | MinarchError):
            raise
        progress.console.print(f"[red]pack {first.pack_key} failed[/red]: {reason}")
    finally:
        progress.remove_task(hooks.task)


def _label(pack: list[RunConfig]) -> str:
    """What the progress bar calls a pack: model, dataset, and how many members."""
    first = pack[0]
    model = describe(first.model.family, first.model.config)
    members = f" ×{len(pack)}" if len(pack) > 1 else ""
    return f"  {model} on {first.dataset.name}{members}"


class _StoreHooks(Hooks):
    """Curves into the store, heartbeats for the whole pack, one progress bar per pack.

    Engines call ``on_step`` once per member and step (member after member in
    the plain loop, all members each step in the fused one), so the bar counts
    member-steps and every heartbeat covers every run of the pack.
    """

    def __init__(self, store: Store, progress: Progress, pack: list[RunConfig]):
        self.store, self.progress = store, progress
        self.run_ids = [c.id for c in pack]
        self.epochs = pack[0].training.epochs
        self.task = progress.add_task(_label(pack), total=None)
        self.last_beat = time.monotonic()
        self.sized = False

    def on_step(self, member: Member, epoch: int, step: int, steps_per_epoch: int) -> None:
        if not self.sized:  # steps per epoch are known from the first step on
            total = len(self.run_ids) * self.epochs * steps_per_epoch
            self.progress.update(self.task, total=total)
            self.sized = True
        self.progress.advance(self.task)
        if time.monotonic() - self.last_beat > HEARTBEAT_SECONDS:
            self.store.heartbeat(self.run_ids, local_owner())
            self.last_beat = time.monotonic()

    def on_epoch(self, member: Member, record: EpochRecord) -> None:
        self.store.record_epoch(member.key, record.epoch, _epoch_metrics(record))


def _epoch_metrics(record: EpochRecord) -> dict[str, float]:
    names = ("train_loss", "train_acc", "val_loss", "val_acc", "val_top5", "lr", "wall_time")
    return {name: getattr(record, name) for name in names}


def _finish(
    store: Store,
    result: MemberResult,
    artifacts: Path,
    device: torch.device,
    config: RunConfig,
    model: nn.Module | None,
    data: Dataset,
) -> None:
    """Store a member's weights and results; a derived run also stores its real size."""
    path, sha256, size = _save_weights(result, artifacts, config, model, data)
    store.add_artifact(result.key, "weights", str(path), sha256, size)
    sizes = {}
    if model is not None:
        sizes = {
            "params": count_parameters(model),
            "flops": count_flops(model, data.info.input_shape),
        }
    store.finish(
        result.key,
        result.state,
        metrics=run_metrics(result.epochs),
        message=result.message,
        engine=result.engine,
        environment=environment(device),
        **sizes,
    )


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
        "final_val_loss": last.val_loss,
        "final_val_acc": last.val_acc,
        "final_val_top5": last.val_top5,
        "best_val_acc": best.val_acc,
        "best_epoch": best.epoch,
        "train_seconds": last.wall_time,
    }


def _save_weights(
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
    partial = path.with_suffix(".pt.partial")
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


def environment(device: torch.device) -> dict[str, str | int]:
    """Enough to trace a number back to the software and hardware that made it."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    return {
        "minarch": minarch.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(device),
        "device_name": name or platform.machine(),
        "threads": torch.get_num_threads(),
        "host": socket.gethostname(),
    }


def progress_bar(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
