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
from minarch.train.layout import in_layout, memory_format
from minarch.train.precision import autocast
from minarch.train.recipe import (
    checks_each_step,
    lr_factor,
    make_optimizer,
    member_generators,
    windows,
)
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

    On a CPU every step's loss is checked. On an accelerator it is checked once
    per window of ``CHECK_EVERY`` steps, through the epoch's loss sum; a window
    that fails is trained again from its snapshot, checking every step, so the
    run stops before its first non-finite step either way.
    """
    device = data.train_x.device
    init_generator, data_generator = member_generators(member.seed, device)
    model = make_model(init_generator).to(device)
    layout = memory_format(model, device)
    model = model.to(memory_format=layout)
    optimizer = make_optimizer(model.parameters(), recipe, member)
    n = data.train_x.shape[0]
    batch_size = recipe.batch_size
    steps_per_epoch = math.ceil(n / batch_size)
    records: list[EpochRecord] = []
    trained = (member,)  # what each step's hook call reports
    precision = autocast(recipe.precision, device)
    train_images, train_labels = train_eval_split(data)
    start = time.perf_counter()
    lr = member.lr

    def finish(state: str, message: str | None = None) -> MemberResult:
        weights = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        return MemberResult(
            member.key, state, tuple(records), weights, message, ENGINE, str(layout)
        )

    def train_steps(
        epoch: int,
        order: Tensor,
        steps: range,
        sums: tuple[Tensor, Tensor],
        *,
        check: bool,
        report: bool,
    ) -> int | None:
        """Train ``steps``, adding each loss and hit count to ``sums`` in place.

        With ``check``, stop before the first non-finite loss and return its
        step; without, nothing waits for the device. With ``report`` the hooks
        see each step (not when a failed window is trained again).
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
            x, y = in_layout(data.normalize(x), layout), data.train_y[index]
            with precision:
                logits = model(x).float()
                loss = F.cross_entropy(logits, y, label_smoothing=recipe.label_smoothing)
            if check and not torch.isfinite(loss):
                return step
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

            loss_sum += loss.detach()
            correct += (logits.detach().argmax(dim=1) == y).sum()
            if report:
                hooks.on_step(trained, epoch, step + 1, steps_per_epoch)
        return None

    for epoch in range(1, recipe.epochs + 1):
        model.train()
        order = torch.randperm(n, generator=data_generator, device=device)
        sums = (torch.zeros((), device=device), torch.zeros((), dtype=torch.int64, device=device))
        for steps in windows(steps_per_epoch):
            if checks_each_step(device):
                stop = train_steps(epoch, order, steps, sums, check=True, report=True)
            else:
                saved = _snapshot(model, optimizer, data_generator, sums)
                train_steps(epoch, order, steps, sums, check=False, report=True)
                # A non-finite loss leaves the sum non-finite: the window's one wait.
                if math.isfinite(sums[0].item()):
                    continue
                _restore(saved, model, optimizer, data_generator, sums)
                stop = train_steps(epoch, order, steps, sums, check=True, report=False)
            if stop is not None:
                message = f"non-finite training loss at epoch {epoch}, step {stop + 1}"
                return finish("diverged", message)

        val_loss, val_acc, val_top5 = evaluate(model, data, layout=layout)
        train_eval_loss, train_eval_acc, _ = evaluate_split(
            model, data, train_images, train_labels, layout=layout
        )
        record = EpochRecord(
            epoch=epoch,
            train_loss=sums[0].item() / steps_per_epoch,
            train_acc=sums[1].item() / n,
            train_eval_loss=train_eval_loss,
            train_eval_acc=train_eval_acc,
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


# Training images measured in eval mode at each epoch's end: as many as the
# validation split has, up to this many, so the two accuracies compare.
TRAIN_EVAL_MAX = 10_000


def train_eval_split(data: Dataset) -> tuple[Tensor, Tensor]:
    """The fixed training subset measured in eval mode every epoch: (images, labels).

    As large as the validation split (at most ``TRAIN_EVAL_MAX``), evenly
    strided through the training split, so it is the same for every epoch,
    member and engine and spans a split stored in class order.
    """
    n = data.train_x.shape[0]
    size = min(n, data.val_x.shape[0], TRAIN_EVAL_MAX)
    index = torch.arange(size, device=data.train_x.device) * n // size
    return data.train_x[index], data.train_y[index]


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data: Dataset,
    batch_size: int | None = None,
    layout: torch.memory_format = torch.contiguous_format,
) -> tuple[float, float, float]:
    """Validation (loss, top-1, top-k) with k = min(5, num_classes), unaugmented."""
    return evaluate_split(model, data, data.val_x, data.val_y, batch_size, layout=layout)


@torch.no_grad()
def evaluate_split(
    model: nn.Module,
    data: Dataset,
    images: Tensor,
    labels: Tensor,
    batch_size: int | None = None,
    *,
    layout: torch.memory_format = torch.contiguous_format,
) -> tuple[float, float, float]:
    """(loss, top-1, top-k) of ``images`` in eval mode, k = min(5, num_classes), unaugmented;
    the batches in ``layout``, the model's."""
    model.eval()
    k = min(5, data.info.num_classes)
    n = images.shape[0]
    device = images.device
    loss_sum = torch.zeros((), device=device)
    top1 = torch.zeros((), dtype=torch.int64, device=device)
    topk = torch.zeros((), dtype=torch.int64, device=device)
    batch = batch_size or eval_batch_size(device)
    for start in range(0, n, batch):
        x = in_layout(data.normalize(images[start : start + batch]), layout)
        y = labels[start : start + batch]
        logits = model(x)
        loss_sum += F.cross_entropy(logits, y, reduction="sum")
        hits = logits.topk(k, dim=1).indices == y[:, None]
        top1 += hits[:, 0].sum()
        topk += hits.any(dim=1).sum()
    return loss_sum.item() / n, top1.item() / n, topk.item() / n
