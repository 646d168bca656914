"""Turning a recipe into an optimizer, a learning-rate schedule and per-member RNGs.

Kept apart from the loops so the plain and the fused engine share them exactly.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable

import torch
from torch import nn

from minarch.train.types import Member, Recipe

# Steps between two checks for a non-finite training loss on an accelerator. A
# check waits for the device, so checking every step would serialise a GPU's
# pipeline; a window that failed its check is trained again from a snapshot,
# checking every step, so a diverged run still stops before its first
# non-finite step.
CHECK_EVERY = 50

# Device types whose steps are checked one by one, with no window and no
# snapshot: on a CPU reading a loss waits for nothing, so a snapshot of every
# weight and optimizer state per window would be pure cost.
STEP_CHECKED_DEVICES = frozenset({"cpu"})


def checks_each_step(device: torch.device) -> bool:
    """Whether training on ``device`` checks every step's loss (else per ``windows``)."""
    return device.type in STEP_CHECKED_DEVICES


def lr_factor(recipe: Recipe, progress: float, steps_per_epoch: int) -> float:
    """Multiplier of the base lr for a step taken after ``progress`` epochs of training.

    Warmup counts the step being taken, so the first step already has a
    non-zero lr and the factor reaches 1 at the last warmup step.
    """
    if recipe.schedule == "constant":
        factor = 1.0
    elif recipe.schedule == "step":
        passed = sum(progress >= m * recipe.epochs for m in recipe.milestones)
        factor = recipe.gamma**passed
    else:  # cosine, from 1 at the start to 0 at the end of training
        factor = 0.5 * (1.0 + math.cos(math.pi * min(progress / recipe.epochs, 1.0)))
    if recipe.warmup_epochs > 0.0:
        factor *= min(1.0, (progress + 1.0 / steps_per_epoch) / recipe.warmup_epochs)
    return factor


def make_optimizer(
    params: Iterable[nn.Parameter], recipe: Recipe, member: Member
) -> torch.optim.Optimizer:
    """SGD with coupled weight decay (the thesis recipe) or AdamW with decoupled decay."""
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(
            params,
            lr=member.lr,
            momentum=recipe.momentum,
            weight_decay=member.weight_decay,
            nesterov=False,
        )
    return torch.optim.AdamW(
        params, lr=member.lr, betas=(recipe.momentum, 0.999), weight_decay=member.weight_decay
    )


def _stream_seed(seed: int, stream: str) -> int:
    digest = hashlib.blake2b(f"{seed}/{stream}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def member_generators(seed: int, device: torch.device) -> tuple[torch.Generator, torch.Generator]:
    """Independent (init, data) generators that depend on the seed alone.

    Initialisation draws on the CPU, where models are built, so a seed gives
    the same initial weights on every device; data order and augmentation draw
    on the device that holds the data. Torch's global RNG is never touched.
    """
    init = torch.Generator().manual_seed(_stream_seed(seed, "init"))
    data = torch.Generator(device=device).manual_seed(_stream_seed(seed, "data"))
    return init, data


def windows(steps_per_epoch: int) -> list[range]:
    """An epoch's steps (0-based) in runs of ``CHECK_EVERY``; the last run ends the epoch."""
    return [
        range(first, min(first + CHECK_EVERY, steps_per_epoch))
        for first in range(0, steps_per_epoch, CHECK_EVERY)
    ]
