"""The fused engine: a pack's members trained together as one stacked computation.

Member i sees exactly the batches, augmentations and initial weights the plain
engine would give it (its own generators, drawn in the same order). Members
sharing a seed share those draws (common random numbers): one batch per seed,
and one batch for the whole fleet when all seeds agree. A member whose loss
turns non-finite is recorded and dropped from the stack, so nothing of it
reaches the others.

On a CPU a run's numbers must not depend on the pack it trained in: a resumed
pack is smaller, and below ``MIN_FUSED_MEMBERS`` it trains plain. So there a
member's forward (fleet.py), loss and validation sums are the plain loop's
calls on that member's slices, and its optimizer update (on any device) is
the plain optimizer's arithmetic: fused member i equals plain member i bit for
bit, whatever the fleet or chunk size (tests/test_pack_invariance.py). On a
GPU the forward, loss and validation are batched for speed instead.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from minarch.data.augment import augment
from minarch.train.engine import fleet_chunk_size
from minarch.train.fleet import Fleet
from minarch.train.hooks import Hooks
from minarch.train.plain import eval_batch_size
from minarch.train.recipe import lr_factor, member_generators, windows
from minarch.train.stacked import StackedOptimizer
from minarch.train.types import EpochRecord, Member, MemberResult, Recipe, TrainError

if TYPE_CHECKING:
    from minarch.data import Dataset

ENGINE = "fused"
# On a GPU: images per validation batch summed over the members, so a fleet of
# large models keeps its activations about the size of one model's.
FLEET_EVAL_IMAGES = 1024


@dataclass(frozen=True)
class FusedOptions:
    """Knobs of the fused engine; the defaults reproduce the plain engine's numbers.

    ``autocast`` (e.g. torch.bfloat16) and ``channels_last`` are for GPUs:
    they trade exactness against the plain loop for speed, so they are opt-in.
    """

    chunk_size: int | None = None  # members trained at once; None: as many as memory allows
    autocast: torch.dtype | None = None
    channels_last: bool = False

    def __post_init__(self) -> None:
        if self.chunk_size is not None and self.chunk_size < 1:
            raise TrainError(f"chunk_size must be at least 1, got {self.chunk_size}")


def train_fused(
    *,
    make_model: Callable[[torch.Generator], nn.Module],
    members: Sequence[Member],
    recipe: Recipe,
    data: Dataset,
    hooks: Hooks,
    options: FusedOptions | None = None,
) -> list[MemberResult]:
    """Train the pack in chunks of members that fit in memory; results in ``members`` order."""
    options = options or FusedOptions()
    size = options.chunk_size or fleet_chunk_size(
        make_model(torch.Generator()), data, recipe.batch_size
    )
    results: list[MemberResult] = []
    for start in range(0, len(members), size):
        chunk = members[start : start + size]
        results += train_chunk(
            make_model=make_model,
            members=chunk,
            recipe=recipe,
            data=data,
            hooks=hooks,
            options=options,
        )
    return results


def train_chunk(
    *,
    make_model: Callable[[torch.Generator], nn.Module],
    members: Sequence[Member],
    recipe: Recipe,
    data: Dataset,
    hooks: Hooks,
    options: FusedOptions,
) -> list[MemberResult]:
    """One fleet, trained top to bottom like the plain loop with a leading member dim."""
    device = data.train_x.device
    generators = {m.seed: member_generators(m.seed, device) for m in members}
    initial = {seed: make_model(init) for seed, (init, _) in generators.items()}
    fleet = Fleet([initial[m.seed] for m in members], device)
    optimizer = StackedOptimizer(
        recipe,
        torch.tensor([m.lr for m in members], dtype=torch.float64, device=device),
        torch.tensor([m.weight_decay for m in members], dtype=torch.float64, device=device),
    )
    active = list(members)
    records: dict[str, list[EpochRecord]] = {m.key: [] for m in members}
    results: dict[str, MemberResult] = {}
    n = data.train_x.shape[0]
    batch_size = recipe.batch_size
    steps_per_epoch = math.ceil(n / batch_size)
    autocast = (
        torch.autocast(device.type, dtype=options.autocast)
        if options.autocast is not None
        else contextlib.nullcontext()
    )
    start = time.perf_counter()

    def stop(positions: list[int], state: str, message: str | None) -> None:
        for i in positions:
            m = active[i]
            results[m.key] = MemberResult(
                m.key, state, tuple(records[m.key]), fleet.member_state(i), message, ENGINE
            )

    def drop(positions: list[int]) -> Tensor:
        """Remove stopped members from the stack; returns the kept positions."""
        kept = [i for i in range(len(active)) if i not in positions]
        index = torch.tensor(kept, dtype=torch.long, device=device)
        fleet.keep(index)
        optimizer.keep(index)
        active[:] = [active[i] for i in kept]
        return index

    def factor(epoch: int, step: int) -> float:
        return lr_factor(recipe, epoch - 1 + step / steps_per_epoch, steps_per_epoch)

    def train_steps(
        epoch: int,
        orders: dict[int, Tensor],
        steps: range,
        sums: tuple[Tensor, Tensor],
        check: bool,
    ) -> tuple[Tensor, Tensor]:
        """Train ``steps``; returns ``sums`` (loss, hits per active member) with them added.

        With ``check``, a member whose loss turns non-finite is recorded as the
        plain loop records it (weights before the step, BN statistics after its
        forward) and dropped. Without, nothing waits for the device, and the
        hooks see each step.
        """
        loss_sum, correct = sums
        for step in steps:
            if not active:
                break
            x, y, shared = _batch(data, recipe, generators, orders, active, step)
            if options.channels_last and shared and x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast:
                logits = fleet.logits(x, shared=shared, train=True).float()
            losses = _member_losses(logits, y, label_smoothing=recipe.label_smoothing)
            diverged: list[int] = []
            if check:
                finite = torch.isfinite(losses)
                if not bool(finite.all()):
                    diverged = (~finite).nonzero().flatten().tolist()
                    message = f"non-finite training loss at epoch {epoch}, step {step + 1}"
                    stop(diverged, "diverged", message)
                    losses = torch.where(finite, losses, 0.0)
            losses.sum().backward()
            optimizer.step(fleet.params, factor(epoch, step))

            loss_sum += losses.detach()
            correct += (logits.detach().argmax(dim=2) == y).sum(dim=1)
            if diverged:
                kept = drop(diverged)
                loss_sum, correct = loss_sum[kept], correct[kept]
            if not check:
                for m in active:
                    hooks.on_step(m, epoch, step + 1, steps_per_epoch)
        return loss_sum, correct

    for epoch in range(1, recipe.epochs + 1):
        orders = {
            seed: torch.randperm(n, generator=data_gen, device=device)
            for seed, (_, data_gen) in generators.items()
            if any(m.seed == seed for m in active)
        }
        sums = (
            torch.zeros(len(active), device=device),
            torch.zeros(len(active), dtype=torch.int64, device=device),
        )
        for steps in windows(steps_per_epoch):
            fleet_state, optimizer_state = fleet.snapshot(), optimizer.snapshot()
            rngs = {seed: data_gen.get_state() for seed, (_, data_gen) in generators.items()}
            start_sums = (sums[0].clone(), sums[1].clone())
            sums = train_steps(epoch, orders, steps, sums, check=False)
            # A non-finite loss leaves its member's sum non-finite: the window's one wait.
            if bool(sums[0].isfinite().all()):
                continue
            fleet.restore(fleet_state)
            optimizer.restore(optimizer_state)
            for seed, state in rngs.items():
                generators[seed][1].set_state(state)
            sums = train_steps(epoch, orders, steps, start_sums, check=True)
        if not active:
            break
        loss_sum, correct = sums

        val_loss, val_acc, val_top5 = evaluate_fleet(fleet, data)
        # Divided in Python, as the plain loop divides its .item()s.
        train_loss = [total / steps_per_epoch for total in loss_sum.tolist()]
        train_acc = [hits / n for hits in correct.tolist()]
        wall_time = time.perf_counter() - start
        for i, m in enumerate(active):
            record = EpochRecord(
                epoch=epoch,
                train_loss=train_loss[i],
                train_acc=train_acc[i],
                val_loss=val_loss[i],
                val_acc=val_acc[i],
                val_top5=val_top5[i],
                lr=m.lr * factor(epoch, steps_per_epoch - 1),
                wall_time=wall_time,
            )
            records[m.key].append(record)
            hooks.on_epoch(m, record)
        # The epoch's last step can blow the weights up while its loss was still finite.
        blown = [i for i, loss in enumerate(val_loss) if not math.isfinite(loss)]
        if blown:
            stop(blown, "diverged", f"non-finite validation loss after epoch {epoch}")
            drop(blown)
    stop(list(range(len(active))), "done", None)
    return [results[m.key] for m in members]


def _batch(
    data: Dataset,
    recipe: Recipe,
    generators: dict[int, tuple[torch.Generator, torch.Generator]],
    orders: dict[int, Tensor],
    active: list[Member],
    step: int,
) -> tuple[Tensor, Tensor, bool]:
    """This step's inputs and labels: one batch per live seed, drawn as the plain loop draws.

    Returns (x, y, shared): one batch for all members when they share a seed,
    else (K, B, ...) and (K, B) with member k's own batch at k.
    """
    seeds = list(dict.fromkeys(m.seed for m in active))
    xs, ys = [], []
    for seed in seeds:
        index = orders[seed][step * recipe.batch_size : (step + 1) * recipe.batch_size]
        xs.append(augment(data.train_x[index], recipe.augmentation, generator=generators[seed][1]))
        ys.append(data.train_y[index])
    if len(seeds) == 1:
        return data.normalize(xs[0]), ys[0].expand(len(active), -1), True
    if len(seeds) < len(active):
        position = {seed: i for i, seed in enumerate(seeds)}
        xs = [xs[position[m.seed]] for m in active]
        ys = [ys[position[m.seed]] for m in active]
    x = data.normalize(torch.cat(xs)).view(len(active), -1, *xs[0].shape[1:])
    return x, torch.stack(ys), False


def _member_losses(
    logits: Tensor, y: Tensor, *, label_smoothing: float = 0.0, reduction: str = "mean"
) -> Tensor:
    """(K,) cross-entropies of (K, B, classes) logits against (K, B) labels.

    On a CPU one ``F.cross_entropy`` per member, exactly the plain loop's call:
    one call over all K·B rows sums a member's losses in another order. On a
    GPU that one call, since K small calls would each launch its own kernels.
    """
    if logits.device.type == "cpu":
        return torch.stack(
            [
                F.cross_entropy(
                    member, labels, label_smoothing=label_smoothing, reduction=reduction
                )
                for member, labels in zip(logits, y, strict=True)
            ]
        )
    k, b, classes = logits.shape
    per_sample = F.cross_entropy(
        logits.reshape(k * b, classes),
        y.reshape(k * b),
        reduction="none",
        label_smoothing=label_smoothing,
    ).view(k, b)
    return per_sample.mean(dim=1) if reduction == "mean" else per_sample.sum(dim=1)


@torch.no_grad()
def evaluate_fleet(fleet: Fleet, data: Dataset) -> tuple[list[float], list[float], list[float]]:
    """Per-member validation (loss, top-1, top-k), k = min(5, num_classes), unaugmented.

    On a CPU each member sees the plain ``evaluate``'s batches and sums, so its
    numbers do not depend on the fleet; on a GPU the fleet's batch is capped
    instead, keeping activations about the size of one model's.
    """
    members = len(fleet)
    device = data.val_x.device
    if device.type == "cpu":
        batch = eval_batch_size(device)
    else:
        batch = max(1, FLEET_EVAL_IMAGES // members)
    k = min(5, data.info.num_classes)
    n = data.val_x.shape[0]
    loss_sum = torch.zeros(members, device=device)
    top1 = torch.zeros(members, dtype=torch.int64, device=device)
    topk = torch.zeros(members, dtype=torch.int64, device=device)
    for start in range(0, n, batch):
        x = data.normalize(data.val_x[start : start + batch])
        y = data.val_y[start : start + batch]
        logits = fleet.logits(x, shared=True, train=False).float()
        loss_sum += _member_losses(logits, y.expand(members, -1), reduction="sum")
        hits = logits.topk(k, dim=2).indices == y[None, :, None]
        top1 += hits[:, :, 0].sum(dim=1)
        topk += hits.any(dim=2).sum(dim=1)
    return (
        [total / n for total in loss_sum.tolist()],
        [hits / n for hits in top1.tolist()],
        [hits / n for hits in topk.tolist()],
    )
