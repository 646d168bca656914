"""Frozen descriptions of a pack's training and of its results.

Frozen so a recipe can be shared by every member and a result handed to the
store without anyone changing it on the way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from torch import Tensor

from minarch.errors import TrainError

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("constant", "step", "cosine")
AUGMENTATIONS = ("none", "crop", "crop-flip")
# fp32: true float32 (no TF32 anywhere); tf32: TF32 matmuls and convolutions on
# a GPU (a CPU computes float32); bf16: forward and loss under bfloat16 autocast.
PRECISIONS = ("fp32", "tf32", "bf16")


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise TrainError(message)


@dataclass(frozen=True)
class Recipe:
    """Everything the members of a pack share; only lr, weight decay and seed differ."""

    optimizer: Literal["sgd", "adamw"] = "sgd"
    momentum: float = 0.9  # SGD momentum (not Nesterov); AdamW's beta1
    batch_size: int = 128
    epochs: int = 10
    schedule: Literal["constant", "step", "cosine"] = "step"
    milestones: tuple[float, ...] = (0.5, 0.75)  # fractions of training where lr *= gamma
    gamma: float = 0.1
    warmup_epochs: float = 0.0  # linear ramp from 0, fractional epochs allowed
    augmentation: Literal["none", "crop", "crop-flip"] = "none"
    label_smoothing: float = 0.0
    precision: Literal["fp32", "tf32", "bf16"] = "fp32"

    def __post_init__(self) -> None:
        _check(self.optimizer in OPTIMIZERS, f"recipe.optimizer must be one of {OPTIMIZERS}")
        _check(self.schedule in SCHEDULES, f"recipe.schedule must be one of {SCHEDULES}")
        _check(
            self.augmentation in AUGMENTATIONS,
            f"recipe.augmentation must be one of {AUGMENTATIONS}",
        )
        _check(0.0 <= self.momentum < 1.0, "recipe.momentum must be in [0, 1)")
        _check(self.batch_size >= 1, "recipe.batch_size must be at least 1")
        _check(self.epochs >= 1, "recipe.epochs must be at least 1")
        _check(
            all(0.0 < m <= 1.0 for m in self.milestones)
            and list(self.milestones) == sorted(self.milestones),
            "recipe.milestones must be increasing fractions of training in (0, 1]",
        )
        _check(self.gamma > 0.0, "recipe.gamma must be positive")
        _check(self.warmup_epochs >= 0.0, "recipe.warmup_epochs must be >= 0")
        _check(0.0 <= self.label_smoothing < 1.0, "recipe.label_smoothing must be in [0, 1)")
        _check(self.precision in PRECISIONS, f"recipe.precision must be one of {PRECISIONS}")


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
