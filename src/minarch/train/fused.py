"""The fused and batched engines: a pack's members trained together as stacked tensors.

Member i sees exactly the batches, augmentations and initial weights the plain
engine would give it (its own generators, drawn in the same order). Members
sharing a seed share those draws (common random numbers): one batch per seed,
and one batch for the whole fleet when all seeds agree. A member whose loss
turns non-finite is recorded and dropped from the stack, so nothing of it
reaches the others.

Fused, a member's forward (fleet.py), loss and validation sums are the plain
loop's calls on that member's slices, and its optimizer update is the plain
optimizer's arithmetic: fused member i equals plain member i bit for bit,
whatever the fleet or chunk size (tests/test_pack_invariance.py). Batched, the
forward, loss and validation are one computation for the fleet: faster where
per-op overhead dominates (any GPU, tiny models on a CPU), equal to plain only
up to float32 round-off (tests/test_fused.py). On a CPU its fleets have fixed
lanes (``lane_fleets``), so there too a member's bits do not depend on its pack.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from minarch.data.augment import augment
from minarch.train.engine import memory_budget, memory_plan
from minarch.train.fleet import Fleet
from minarch.train.hooks import Hooks
from minarch.train.layout import memory_format
from minarch.train.plain import eval_batch_size, train_eval_split
from minarch.train.precision import autocast
from minarch.train.recipe import checks_each_step, lr_factor, member_generators, windows
from minarch.train.stacked import StackedOptimizer
from minarch.train.types import EpochRecord, Member, MemberResult, Recipe, TrainError

if TYPE_CHECKING:
    from minarch.data import Dataset


@dataclass(frozen=True)
class FusedOptions:
    """Knobs of the fused engine; the defaults reproduce the plain engine's numbers.

    ``batched`` runs the fleet's forward as one computation (``Fleet``), the
    GPU's engine; ``channels_last`` (batched, for GPUs) trades exactness against
    the plain loop for speed, so it is opt-in.
    """

    chunk_size: int | None = None  # members trained at once; None: as many as memory allows
    batched: bool = False
    # Batched only: every fleet exactly this wide, short ones padded with ghost
    # members, so a member's numbers do not depend on its pack (``train_chunk``).
    lanes: int | None = None
    memory_share: float = 1.0  # this process's fraction of the device (``memory_budget``)
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
    device = data.train_x.device
    if options.lanes is not None:
        chunks = lane_fleets(members, options.lanes)
        # Fixed, not planned: a batched kernel's bits depend on the batch's shape.
        eval_images = eval_batch_size(device)
    else:
        budget = memory_budget(device, options.memory_share)
        model = make_model(torch.Generator())
        plan = memory_plan(model, data, recipe.batch_size, len(members), budget)
        size = options.chunk_size or plan.members
        chunks = [members[start : start + size] for start in range(0, len(members), size)]
        eval_images = plan.eval_images
    results: dict[str, MemberResult] = {}
    for chunk in chunks:
        for result in train_chunk(
            make_model=make_model,
            members=chunk,
            recipe=recipe,
            data=data,
            hooks=hooks,
            options=options,
            eval_images=eval_images,
        ):
            results[result.key] = result
    return [results[m.key] for m in members]


def lane_fleets(members: Sequence[Member], lanes: int) -> list[list[Member | None]]:
    """Fleets of ``lanes`` lanes with member m in lane ``m.seed % lanes``; None: an empty lane.

    A member's lane follows from its own seed, never from the pack around it:
    a batched kernel may round each lane of a fleet its own way. Members take
    the first fleet whose lane is free, so a pack of seeds 0, 1, 2 (at one lr)
    is one fleet of three lanes.
    """
    fleets: list[list[Member | None]] = []
    for m in members:
        lane = m.seed % lanes
        free = next((fleet for fleet in fleets if fleet[lane] is None), None)
        if free is None:
            free = [None] * lanes
            fleets.append(free)
        free[lane] = m
    return fleets


def train_chunk(
    *,
    make_model: Callable[[torch.Generator], nn.Module],
    members: Sequence[Member | None],
    recipe: Recipe,
    data: Dataset,
    hooks: Hooks,
    options: FusedOptions,
    eval_images: int,
) -> list[MemberResult]:
    """One fleet, trained top to bottom like the plain loop with a leading member dim.

    ``eval_images``: images per batched evaluation call (the fused engine
    evaluates each member in the plain loop's batches instead).

    With ``options.lanes``, ``members`` has one entry per lane (None: empty)
    and the fleet keeps that width from start to end: ghost members (copies
    of a real one, its seed's batches, results discarded) fill the empty lanes
    and those that real members leave, and every lane gets its own copy of the
    batch. A batched kernel rounds by shape, so fixed, the shapes are the same
    for every pack a member trains in: a resumed or cut pack reproduces its
    numbers bit for bit.
    """
    device = data.train_x.device
    real = {m.key for m in members if m is not None}
    lanes = options.lanes
    ghosts = itertools.count()

    def ghost(of: Member) -> Member:
        return replace(of, key=f"{of.key}#ghost{next(ghosts)}")

    first = next(m for m in members if m is not None)
    active = [m if m is not None else ghost(first) for m in members]
    generators = {m.seed: member_generators(m.seed, device) for m in active}
    initial = {seed: make_model(init) for seed, (init, _) in generators.items()}
    template = initial[first.seed]
    layout = torch.contiguous_format if options.batched else memory_format(template, device)
    fleet = Fleet(
        [initial[m.seed] for m in active],
        device,
        batched=options.batched,
        per_lane_inputs=lanes is not None,
        layout=layout,
    )
    engine = "batched" if options.batched else "fused"
    optimizer = StackedOptimizer(
        recipe,
        torch.tensor([m.lr for m in active], dtype=torch.float64, device=device),
        torch.tensor([m.weight_decay for m in active], dtype=torch.float64, device=device),
    )
    records: dict[str, list[EpochRecord]] = {key: [] for key in real}
    results: dict[str, MemberResult] = {}
    n = data.train_x.shape[0]
    batch_size = recipe.batch_size
    steps_per_epoch = math.ceil(n / batch_size)
    train_images, train_labels = train_eval_split(data)
    precision = autocast(recipe.precision, device)
    start = time.perf_counter()

    live = [m for m in active if m.key in real]  # what each step's hook call reports

    def alive() -> bool:
        return bool(live)

    def stop(positions: list[int], state: str, message: str | None) -> None:
        for i in positions:
            m = active[i]
            if m.key not in real:
                continue
            results[m.key] = MemberResult(
                m.key,
                state,
                tuple(records[m.key]),
                fleet.member_state(i),
                message,
                engine,
                str(layout),
            )

    def drop(positions: list[int]) -> Tensor:
        """Remove stopped members from the stack, or with lanes, turn their lanes into
        ghosts of the first live real member; returns the kept positions."""
        kept = [i for i in range(len(active)) if i not in positions]
        source = next((i for i in kept if active[i].key in real), None)
        if lanes is not None and source is not None:
            kept = [source if i in positions else i for i in range(len(active))]
        index = torch.tensor(kept, dtype=torch.long, device=device)
        fleet.keep(index)
        optimizer.keep(index)
        active[:] = [
            ghost(active[k]) if lanes is not None and i in positions else active[k]
            for i, k in enumerate(kept)
        ]
        live[:] = [m for m in active if m.key in real]
        return index

    def factor(epoch: int, step: int) -> float:
        return lr_factor(recipe, epoch - 1 + step / steps_per_epoch, steps_per_epoch)

    def train_steps(
        epoch: int,
        orders: dict[int, Tensor],
        steps: range,
        sums: tuple[Tensor, Tensor],
        *,
        check: bool,
        report: bool,
    ) -> tuple[Tensor, Tensor]:
        """Train ``steps``; returns ``sums`` (loss, hits per active member) with them added.

        With ``check``, a member whose loss turns non-finite is recorded as the
        plain loop records it (weights before the step, BN statistics after its
        forward) and dropped; without, nothing waits for the device. With
        ``report`` the hooks see each step (not when a failed window is trained again).
        """
        loss_sum, correct = sums
        for step in steps:
            if not alive():
                break
            x, y, shared = _batch(data, recipe, generators, orders, active, step)
            if options.channels_last and shared and x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            with precision:
                logits = fleet.logits(x, shared=shared, train=True).float()
            losses = _member_losses(
                logits, y, batched=options.batched, label_smoothing=recipe.label_smoothing
            )
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
            if report:
                hooks.on_step(live, epoch, step + 1, steps_per_epoch)
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
            if checks_each_step(device):
                sums = train_steps(epoch, orders, steps, sums, check=True, report=True)
                continue
            fleet_state, optimizer_state = fleet.snapshot(), optimizer.snapshot()
            rngs = {seed: data_gen.get_state() for seed, (_, data_gen) in generators.items()}
            start_sums = (sums[0].clone(), sums[1].clone())
            sums = train_steps(epoch, orders, steps, sums, check=False, report=True)
            # A non-finite loss leaves its member's sum non-finite: the window's one wait.
            if bool(sums[0].isfinite().all()):
                continue
            fleet.restore(fleet_state)
            optimizer.restore(optimizer_state)
            for seed, state in rngs.items():
                generators[seed][1].set_state(state)
            sums = train_steps(epoch, orders, steps, start_sums, check=True, report=False)
        if not alive():
            break
        loss_sum, correct = sums

        val_loss, val_acc, val_top5 = evaluate_fleet(
            fleet, data, data.val_x, data.val_y, eval_images
        )
        train_eval_loss, train_eval_acc, _ = evaluate_fleet(
            fleet, data, train_images, train_labels, eval_images
        )
        # Divided in Python, as the plain loop divides its .item()s.
        train_loss = [total / steps_per_epoch for total in loss_sum.tolist()]
        train_acc = [hits / n for hits in correct.tolist()]
        wall_time = time.perf_counter() - start
        for i, m in enumerate(active):
            if m.key not in real:
                continue
            record = EpochRecord(
                epoch=epoch,
                train_loss=train_loss[i],
                train_acc=train_acc[i],
                train_eval_loss=train_eval_loss[i],
                train_eval_acc=train_eval_acc[i],
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
    return list(results.values())


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
    logits: Tensor,
    y: Tensor,
    *,
    batched: bool,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
) -> Tensor:
    """(K,) cross-entropies of (K, B, classes) logits against (K, B) labels.

    Fused: one ``F.cross_entropy`` per member, exactly the plain loop's call
    (one call over all K·B rows sums a member's losses in another order).
    Batched: that one call, since K small calls would each launch its own kernels.
    """
    if not batched:
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
def evaluate_fleet(
    fleet: Fleet, data: Dataset, images: Tensor, labels: Tensor, batched_images: int
) -> tuple[list[float], list[float], list[float]]:
    """Per-member (loss, top-1, top-k) of ``images`` in eval mode, k = min(5, num_classes).

    Fused, each member sees the plain ``evaluate``'s batches and sums, so its
    numbers do not depend on the fleet; batched, ``batched_images`` per call,
    as many as the memory plan allows.
    """
    members = len(fleet)
    device = images.device
    batch = batched_images if fleet.batched else eval_batch_size(device)
    k = min(5, data.info.num_classes)
    n = images.shape[0]
    loss_sum = torch.zeros(members, device=device)
    top1 = torch.zeros(members, dtype=torch.int64, device=device)
    topk = torch.zeros(members, dtype=torch.int64, device=device)
    for start in range(0, n, batch):
        x = data.normalize(images[start : start + batch])
        y = labels[start : start + batch]
        logits = fleet.logits(x, shared=True, train=False).float()
        loss_sum += _member_losses(
            logits, y.expand(members, -1), batched=fleet.batched, reduction="sum"
        )
        hits = logits.topk(k, dim=2).indices == y[None, :, None]
        top1 += hits[:, :, 0].sum(dim=1)
        topk += hits.any(dim=2).sum(dim=1)
    return (
        [total / n for total in loss_sum.tolist()],
        [hits / n for hits in top1.tolist()],
        [hits / n for hits in topk.tolist()],
    )
