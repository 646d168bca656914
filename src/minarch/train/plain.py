"""The plain engine: members trained one after another, each an ordinary PyTorch loop.

It is the reference the fused engine must match, so it reads like airbench:
data already on the device, whole-batch augmentation, no DataLoader.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from minarch.data.augment import augment
from minarch.train.hooks import Hooks
from minarch.train.recipe import lr_factor, make_optimizer, member_generators, windows
from minarch.train.types import EpochRecord, Member, MemberResult, Recipe

if TYPE_CHECKING:
    from minarch.data import Dataset

ENGINE = "plain"


def eval_batch_size(device: torch.device) -> int:
    """Images per validation batch: large on a GPU, since no activations are kept.

    256 on a CPU: a small CNN's activation for 1024 MNIST images (50+ MB) is
    above glibc's mmap threshold, so every batch faults its pages in anew;
    256 evaluates 1.8x faster there (benchmarks/bench_eval.py).
    """
    return 256 if device.type == "cpu" else 1024


def train_plain(
    *,
    make_model: Callable[[torch.Generator], nn.Module],
    members: Sequence[Member],
    recipe: Recipe,
    data: Dataset,
    hooks: Hooks,
) -> list[MemberResult]:
    """Train each member on its own; ``data`` is already on the training device."""
    return [
        train_member(make_model=make_model, member=m, recipe=recipe, data=data, hooks=hooks)
        for m in members
    ]


def train_member(
    *,
    make_model: Callable[[torch.Generator], nn.Module],
    member: Member,
    recipe: Recipe,
    data: Dataset,
    hooks: Hooks,
) -> MemberResult:
    """One member's training; a non-finite loss ends it early as "diverged".

    The loss is checked once per window of ``CHECK_EVERY`` steps, through the
    epoch's loss sum; a window that fails is trained again from its snapshot,
    checking every step, so the run stops before its first non-finite step.
    """
    device = data.train_x.device
    init_generator, data_generator = member_generators(member.seed, device)
    model = make_model(init_generator).to(device)
    optimizer = make_optimizer(model.parameters(), recipe, member)
    n = data.train_x.shape[0]
    batch_size = recipe.batch_size
    steps_per_epoch = math.ceil(n / batch_size)
    records: list[EpochRecord] = []
    start = time.perf_counter()
    lr = member.lr

    def finish(state: str, message: str | None = None) -> MemberResult:
        weights = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        return MemberResult(member.key, state, tuple(records), weights, message, ENGINE)

    def train_steps(
        epoch: int, order: Tensor, steps: range, sums: tuple[Tensor, Tensor], check: bool
    ) -> int | None:
        """Train ``steps``, adding each loss and hit count to ``sums`` in place.

        With ``check``, stop before the first non-finite loss and return its
        step. Without, nothing waits for the device, and the hooks see each step.
        """
        nonlocal lr
        loss_sum, correct = sums
        for step in steps:
            progress = epoch - 1 + step / steps_per_epoch
            lr = member.lr * lr_factor(recipe, progress, steps_per_epoch)
            for group in optimizer.param_groups:
                group["lr"] = lr

            index = order[step * batch_size : (step + 1) * batch_size]
            x = augment(data.train_x[index], recipe.augmentation, generator=data_generator)
            x, y = data.normalize(x), data.train_y[index]
            logits = model(x)
            loss = F.cross_entropy(logits, y, label_smoothing=recipe.label_smoothing)
            if check and not torch.isfinite(loss):
                return step
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

            loss_sum += loss.detach()
            correct += (logits.detach().argmax(dim=1) == y).sum()
            if not check:
                hooks.on_step(member, epoch, step + 1, steps_per_epoch)
        return None

    for epoch in range(1, recipe.epochs + 1):
        model.train()
        order = torch.randperm(n, generator=data_generator, device=device)
        sums = (torch.zeros((), device=device), torch.zeros((), dtype=torch.int64, device=device))
        for steps in windows(steps_per_epoch):
            saved = _snapshot(model, optimizer, data_generator, sums)
            train_steps(epoch, order, steps, sums, check=False)
            # A non-finite loss leaves the sum non-finite: the window's one wait.
            if math.isfinite(sums[0].item()):
                continue
            _restore(saved, model, optimizer, data_generator, sums)
            stop = train_steps(epoch, order, steps, sums, check=True)
            if stop is not None:
                message = f"non-finite training loss at epoch {epoch}, step {stop + 1}"
                return finish("diverged", message)

        val_loss, val_acc, val_top5 = evaluate(model, data)
        record = EpochRecord(
            epoch=epoch,
            train_loss=sums[0].item() / steps_per_epoch,
            train_acc=sums[1].item() / n,
            val_loss=val_loss,
            val_acc=val_acc,
            val_top5=val_top5,
            lr=lr,
            wall_time=time.perf_counter() - start,
        )
        records.append(record)
        hooks.on_epoch(member, record)
        # The epoch's last step can blow the weights up while its loss was still finite.
        if not math.isfinite(val_loss):
            return finish("diverged", f"non-finite validation loss after epoch {epoch}")
    return finish("done")


_Snapshot = tuple[dict[str, Tensor], dict, Tensor, list[Tensor]]


def _snapshot(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    sums: tuple[Tensor, Tensor],
) -> _Snapshot:
    """Copies of all that training a window changes: weights, optimizer, data RNG, sums."""
    return (
        {name: value.clone() for name, value in model.state_dict().items()},
        {
            param: {k: v.clone() if isinstance(v, Tensor) else v for k, v in state.items()}
            for param, state in optimizer.state.items()
        },
        generator.get_state(),
        [total.clone() for total in sums],
    )


def _restore(
    saved: _Snapshot,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    sums: tuple[Tensor, Tensor],
) -> None:
    weights, optimizer_state, rng, totals = saved
    model.load_state_dict(weights)
    optimizer.state.clear()
    optimizer.state.update(optimizer_state)
    generator.set_state(rng)
    for total, value in zip(sums, totals, strict=True):
        total.copy_(value)


@torch.no_grad()
def evaluate(
    model: nn.Module, data: Dataset, batch_size: int | None = None
) -> tuple[float, float, float]:
    """Validation (loss, top-1, top-k) with k = min(5, num_classes), unaugmented."""
    model.eval()
    k = min(5, data.info.num_classes)
    n = data.val_x.shape[0]
    device = data.val_x.device
    loss_sum = torch.zeros((), device=device)
    top1 = torch.zeros((), dtype=torch.int64, device=device)
    topk = torch.zeros((), dtype=torch.int64, device=device)
    batch = batch_size or eval_batch_size(device)
    for start in range(0, n, batch):
        x = data.normalize(data.val_x[start : start + batch])
        y = data.val_y[start : start + batch]
        logits = model(x)
        loss_sum += F.cross_entropy(logits, y, reduction="sum")
        hits = logits.topk(k, dim=1).indices == y[:, None]
        top1 += hits[:, 0].sum()
        topk += hits.any(dim=1).sum()
    return loss_sum.item() / n, top1.item() / n, topk.item() / n
