"""Frozen descriptions of a pack's training and of its results.

Frozen so a recipe can be shared by every member and a result handed to the
store without anyone changing it on the way. The recipe is the study schema's
``Recipe`` (``spec/schema.py``), so a study file and the trainer accept the same ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from minarch.errors import TrainError
from minarch.spec.schema import Recipe

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["EpochRecord", "Member", "MemberResult", "Recipe"]


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise TrainError(message)


@dataclass(frozen=True)
class Member:
    """One run of a pack: the hyperparameters that may differ between members."""

    key: str  # run id
    lr: float
    weight_decay: float
    seed: int

    def __post_init__(self) -> None:
        _check(
            math.isfinite(self.lr) and self.lr >= 0.0,
            f"member {self.key}: lr must be finite and >= 0, got {self.lr}",
        )
        _check(
            math.isfinite(self.weight_decay) and self.weight_decay >= 0.0,
            f"member {self.key}: weight_decay must be finite and >= 0, got {self.weight_decay}",
        )


@dataclass(frozen=True)
class EpochRecord:
    """One point of a member's learning curve; accuracies are fractions in [0, 1]."""

    epoch: int  # 1-based
    train_loss: float  # mean of the epoch's batch losses, as trained (augmented, smoothed)
    train_acc: float  # hits over the epoch's train-mode batches, the weights still moving
    train_eval_loss: float  # eval mode at the epoch's end, on ``train_eval_split``
    train_eval_acc: float
    val_loss: float  # plain cross-entropy, no label smoothing, so recipes compare
    val_acc: float  # top-1
    val_top5: float  # top-min(5, num_classes)
    lr: float  # the lr of the epoch's last optimizer step
    wall_time: float  # seconds since this member started training


@dataclass(frozen=True)
class MemberResult:
    """What training one member produced, ready for the store."""

    key: str
    state: Literal["done", "diverged"]
    epochs: tuple[EpochRecord, ...]
    state_dict: dict[str, Tensor]  # on CPU; for a diverged member, the weights at the stop
    message: str | None  # why it stopped early, naming epoch and step
    engine: str  # which engine trained it
    memory_format: (
        str  # the layout it trained in: "torch.channels_last" or "torch.contiguous_format"
    )
