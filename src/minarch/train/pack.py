"""``train_pack``: the one entry point, which picks an engine inside, so callers never
change when a faster engine arrives."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn

from minarch.train.engine import batched_lanes, choose_engine
from minarch.train.fused import FusedOptions, train_fused
from minarch.train.hooks import Hooks
from minarch.train.plain import train_plain
from minarch.train.precision import numerics
from minarch.train.types import Member, MemberResult, Recipe, TrainError

if TYPE_CHECKING:
    from minarch.data import Dataset

# "plain": members one after another, ordinary PyTorch; "fused": members trained
# together, each through its own layers, bit for bit plain's numbers; "batched":
# one vmap / chain-matmul forward for the fleet, faster, not bit-exact to plain.
# "auto" picks by ``choose_engine``'s rule.
ENGINES = ("auto", "plain", "fused", "batched")


def train_pack(
    *,
    make_model: Callable[[torch.Generator], nn.Module],
    members: Sequence[Member],
    recipe: Recipe,
    data: Dataset,
    device: torch.device | str = "cpu",
    hooks: Hooks | None = None,
    engine: str = "auto",
    deterministic: bool = False,
    memory_share: float = 1.0,
) -> list[MemberResult]:
    """Train every member; results come back in ``members`` order.

    ``make_model(generator)`` must draw every initial weight from ``generator``
    so a member's seed fixes its initialisation. A member that diverges is
    reported as such and the pack goes on; an exception from ``hooks`` aborts.
    ``engine="auto"`` chooses by ``choose_engine``'s rule; ``MemberResult.engine``
    says which engine ran. ``recipe.precision`` and ``deterministic`` set the
    float arithmetic (``precision.numerics``) for the pack's duration.
    ``memory_share`` is this process's fraction of the device: the memory plan
    (``engine.memory_plan``) cuts the pack into fleets that fit it.
    """
    if engine not in ENGINES:
        raise TrainError(f"unknown engine {engine!r}; valid engines: {', '.join(ENGINES)}")
    duplicates = sorted(k for k, n in Counter(m.key for m in members).items() if n > 1)
    if duplicates:
        raise TrainError(f"member keys must be unique in a pack; repeated: {duplicates}")
    if len(data.val_y) == 0:
        raise TrainError("the dataset has no validation samples; training evaluates every epoch")
    # Device handling lives here: the data moves once, and the engine trains
    # wherever the data is.
    device = torch.device(device)
    data = data.to(device)
    if engine == "auto":
        model = make_model(torch.Generator())
        engine = choose_engine(model, data.info.input_shape, len(members), device)
    hooks = hooks if hooks is not None else Hooks()
    with numerics(recipe.precision, deterministic):
        if engine == "plain":
            return train_plain(
                make_model=make_model, members=members, recipe=recipe, data=data, hooks=hooks
            )
        return train_fused(
            make_model=make_model,
            members=members,
            recipe=recipe,
            data=data,
            hooks=hooks,
            options=FusedOptions(
                batched=engine == "batched",
                lanes=batched_lanes(device) if engine == "batched" else None,
                memory_share=memory_share,
            ),
        )
