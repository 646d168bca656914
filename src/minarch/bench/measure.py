"""Timings: the machine's matmul peak, the usual-PyTorch baseline and minarch's pack engine.

Rates are training samples per second summed over members (a pack of K
members seeing one batch of B samples trains K·B samples).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from minarch.data import Dataset, DatasetInfo
from minarch.train import Hooks, Member, Recipe, train_pack

PEAK_SIDE = 2048
VALIDATION_SAMPLES = 256  # evaluation is untimed; keep it short


def random_data(info: DatasetInfo, samples: int) -> Dataset:
    """``samples`` random uint8 training inputs of ``info``'s shape (step time ignores values)."""
    g = torch.Generator().manual_seed(0)
    total = samples + VALIDATION_SAMPLES
    x = torch.randint(0, 256, (total, *info.input_shape), generator=g, dtype=torch.uint8)
    y = torch.randint(0, info.num_classes, (total,), generator=g)
    channels = info.input_shape[0]
    mean, std = torch.full((channels,), 127.5), torch.full((channels,), 73.9)
    return Dataset(info, x[:samples], y[:samples], x[samples:], y[samples:], mean, std)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(device: torch.device, repeats: int = 5, rounds: int = 3) -> float:
    """Best float32 FLOP/s of a 2048×2048 matmul (best of ``rounds``, as load only slows it)."""
    g = torch.Generator().manual_seed(0)
    a, b = (torch.randn(PEAK_SIDE, PEAK_SIDE, generator=g).to(device) for _ in range(2))
    a @ b  # warm-up
    best = float("inf")
    for _ in range(rounds):
        synchronize(device)
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * PEAK_SIDE**3 * repeats / best


def baseline_rate(
    make_model: Callable[[torch.Generator], nn.Module],
    members: list[Member],
    data: Dataset,
    *,
    momentum: float,
    batch_size: int,
    warmup_steps: int,
) -> float:
    """PyTorch written the usual way: DataLoader over a TensorDataset, one model at a time, SGD."""
    device = data.train_x.device
    x, y = data.normalize(data.train_x).cpu(), data.train_y.cpu()
    seconds, samples = 0.0, 0
    for member in members:
        model = make_model(torch.Generator().manual_seed(member.seed)).to(device)
        optimizer = torch.optim.SGD(
            model.parameters(), lr=member.lr, momentum=momentum, weight_decay=member.weight_decay
        )
        loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True)
        model.train()
        start = time.perf_counter()
        for step, (inputs, labels) in enumerate(loader):
            if step == warmup_steps:
                synchronize(device)
                start = time.perf_counter()
            inputs, labels = inputs.to(device), labels.to(device)
            optimizer.zero_grad()
            loss = F.cross_entropy(model(inputs), labels)
            loss.backward()
            optimizer.step()
            if step >= warmup_steps:
                samples += len(labels)
        synchronize(device)
        seconds += time.perf_counter() - start
    return samples / seconds


class StepClock(Hooks):
    """Timestamps each member's first timed and last step; pack time is the union of spans."""

    def __init__(self, warmup_steps: int, device: torch.device) -> None:
        self.warmup_steps = warmup_steps
        self.device = device
        self.spans: dict[str, list[float]] = {}

    def on_step(
        self, members: Sequence[Member], epoch: int, step: int, steps_per_epoch: int
    ) -> None:
        if step in (self.warmup_steps, steps_per_epoch):
            synchronize(self.device)
            now = time.perf_counter()
            for member in members:
                self.spans.setdefault(member.key, []).append(now)

    def seconds(self) -> float:
        """Length of the union of the members' timed spans (plain: disjoint; fused: one)."""
        total, reach = 0.0, float("-inf")
        for start, end in sorted((s[0], s[-1]) for s in self.spans.values()):
            total += max(0.0, end - max(start, reach))
            reach = max(reach, end)
        return total


def minarch_rate(
    make_model: Callable[[torch.Generator], nn.Module],
    members: list[Member],
    data: Dataset,
    *,
    recipe: Recipe,
    warmup_steps: int,
    engine: str,
) -> tuple[float, str]:
    """One epoch of ``train_pack``; returns (samples/s over the timed steps, engine used)."""
    device = data.train_x.device
    clock = StepClock(warmup_steps, device)
    results = train_pack(
        make_model=make_model,
        members=members,
        recipe=recipe,
        data=data,
        device=device,
        hooks=clock,
        engine=engine,
    )
    timed = len(data.train_y) - warmup_steps * recipe.batch_size
    return len(members) * timed / clock.seconds(), results[0].engine
