"""How long a plan will train: each pack's step time measured here, times its steps.

A few steps of every distinct pack (architecture, input shape, recipe and
member count) are timed on the device with random inputs of the dataset's
shape, through ``train_pack`` with the engine ``minarch run`` would choose,
so the estimate holds for this machine. A fused pack is timed whole (its
members step together); a plain one through one member, since its members
train one after another at the same cost. It covers training steps only: per-epoch
evaluation, one-shot compression and start-up come on top. A structured-pruned
pack is timed on its parent's architecture and scaled by its FLOPs target,
which underestimates small models on a GPU, whose step time is mostly
kernel-launch latency rather than arithmetic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
import torch
from rich.console import Console

from minarch.bench.measure import minarch_rate, random_data
from minarch.data import DatasetInfo, dataset_info
from minarch.errors import MinarchError
from minarch.execute.derived import ordinary_start
from minarch.execute.pack import Pack
from minarch.execute.planner import Plan
from minarch.execute.policy import intra_op_threads, resolve_threads, resolve_workers
from minarch.execute.progress import progress_bar
from minarch.spec import RunConfig
from minarch.spec.settings import StructuredPrune
from minarch.train.engine import batched_lanes, choose_engine

WARMUP_STEPS = 2  # allocator, kernel selection and caches; not timed
TIMED_STEPS = 5


@dataclass(frozen=True)
class PackEstimate:
    """One pack's training time: its optimizer steps times the measured time of one."""

    pack: Pack
    steps: int  # per member; members of a pack step together
    seconds_per_step: float  # the whole pack's step, all members

    @property
    def seconds(self) -> float:
        return self.steps * self.seconds_per_step


@dataclass(frozen=True)
class TimeEstimate:
    """A plan's packs with their times, and how many workers ``--workers auto`` would use."""

    packs: tuple[PackEstimate, ...]
    device: torch.device
    workers: int

    @property
    def seconds(self) -> float:
        """Training time on one worker; packs are independent, so N workers take about 1/N."""
        return sum(p.seconds for p in self.packs)

    def frame(self) -> pd.DataFrame:
        """One row per pack: what it trains, its steps and measured times."""
        return pd.DataFrame(
            [
                {
                    "dataset": p.pack.first.dataset.name,
                    "family": p.pack.first.model.family,
                    "pack": p.pack.label,
                    "runs": len(p.pack.configs),
                    "steps": p.steps,
                    "seconds_per_step": p.seconds_per_step,
                    "seconds": p.seconds,
                }
                for p in self.packs
            ]
        )


def estimate_training(plan: Plan, device: torch.device, console: Console) -> TimeEstimate:
    """Every pack of ``plan`` with its training time measured on ``device``, in plan order.

    Timed with the threads ``minarch run`` would give a pack (one on a CPU);
    the progress of the timing goes to ``console``.
    """
    measured: dict[tuple, float] = {}
    estimates = []
    packs = plan.packs()
    with intra_op_threads(resolve_threads(None, device)), progress_bar(console) as progress:
        task = progress.add_task("timing packs", total=len(packs))
        for pack in packs:
            first = pack.first
            spec = first.dataset
            info = dataset_info(spec.name, path=spec.path, image_size=spec.image_size)
            key = (spec, first.model, pack.recipe(), len(pack.configs))
            if key not in measured:
                measured[key] = _seconds_per_step(pack, info, device)
            per_step = measured[key]
            setting = first.derived.setting if first.derived else None
            if isinstance(setting, StructuredPrune):
                per_step *= setting.flops_remaining
            estimates.append(PackEstimate(pack, _steps(first, info), per_step))
            progress.advance(task)
    workers = resolve_workers("auto", device, packs=len(packs), runs=len(plan.runs))
    return TimeEstimate(tuple(estimates), device, workers)


def _steps(config: RunConfig, info: DatasetInfo) -> int:
    """Optimizer steps of one member: epochs times batches of its training split."""
    spec = config.dataset
    if info.train_size is None:
        raise MinarchError(f"{spec.name}: its training-set size is unknown, so no time estimate")
    samples = info.train_size
    if not isinstance(spec.validation, str):  # a held-out fraction of the train split
        samples = round(samples * (1 - spec.validation))
    samples = max(1, round(samples * spec.train_fraction))
    return config.training.epochs * math.ceil(samples / config.training.batch_size)


def _seconds_per_step(pack: Pack, info: DatasetInfo, device: torch.device) -> float:
    """One pack step, timed over ``TIMED_STEPS`` after ``WARMUP_STEPS`` on random inputs."""
    recipe = pack.recipe().model_copy(
        update={"epochs": 1, "schedule": "constant", "warmup_epochs": 0.0}
    )
    samples = recipe.batch_size * (WARMUP_STEPS + TIMED_STEPS)
    data = random_data(info, samples).to(device)
    make_model = ordinary_start(pack.first, data).make_model  # the parent's architecture
    members = pack.members()
    engine = choose_engine(make_model(torch.Generator()), info.input_shape, len(members), device)
    # Plain trains one member at a time, batched one fleet of lanes at a time.
    timed = {"fused": members, "batched": members[: batched_lanes(device) or len(members)]}.get(
        engine, members[:1]
    )
    rate, _ = minarch_rate(
        make_model, timed, data, recipe=recipe, warmup_steps=WARMUP_STEPS, engine=engine
    )
    return len(members) * recipe.batch_size / rate  # rate: samples per second, summed
