"""A run's numbers depend on its member alone, not on its pack (one CPU thread).

A resumed pack retrains only its unfinished members, and ``--workers`` cuts a
pack in parts: a smaller fleet, other chunks, below MIN_FUSED_MEMBERS the
plain engine instead of the fused one, and for the batched engine other lanes
left empty. Every epoch record and the final weights must come out bit for bit
as in the whole pack.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from dataclasses import replace

import pytest
import torch
from torch import nn

from minarch.models import build_model
from minarch.train import FusedOptions, Hooks, Member, MemberResult, Recipe, train_fused, train_pack
from minarch.train import plain as plain_module
from minarch.train import recipe as recipe_module
from minarch.train.fleet import Fleet
from tests.synthetic import class_patterns

SHAPE = (3, 8, 8)
CLASSES = 4
DATA = class_patterns(SHAPE, CLASSES, 100, 80, noise=30)  # fused used to split validation by K
RECIPE = Recipe(batch_size=32, epochs=2, augmentation="crop-flip")  # last batch of 4
CONFIGS = {"mlp": {"width": 16, "depth": 2}, "cnn": {"channels": 4}}
# 16 members over three seeds: subsets mix seeds or share one, as resumes do.
PACK = [Member(f"m{i}", 0.02 * 1.3 ** (i % 5), (0.0, 1e-3)[i % 2], i % 3) for i in range(16)]
SUBSETS = ([7], [3, 6, 9], [0, 4, 5, 11, 15])  # 3, 6, 9 share seed 0


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def maker(family: str):
    def make(generator: torch.Generator) -> nn.Module:
        return build_model(family, CONFIGS[family], SHAPE, CLASSES, generator=generator)

    return make


def train(family: str, members: list[Member], engine: str, recipe: Recipe = RECIPE, **options):
    if options:
        return train_fused(
            make_model=maker(family),
            members=members,
            recipe=recipe,
            data=DATA,
            hooks=Hooks(),
            options=FusedOptions(**options),
        )
    return train_pack(
        make_model=maker(family), members=members, recipe=recipe, data=DATA, engine=engine
    )


def assert_identical(a: MemberResult, b: MemberResult) -> None:
    """Same state, message, every epoch record (but wall time) and every weight, bit for bit."""
    assert (a.key, a.state, a.message) == (b.key, b.state, b.message)
    assert [replace(e, wall_time=0.0) for e in a.epochs] == [
        replace(e, wall_time=0.0) for e in b.epochs
    ]
    assert a.state_dict.keys() == b.state_dict.keys()
    for key, value in a.state_dict.items():
        assert torch.equal(value, b.state_dict[key]), key


@functools.cache
def whole_pack(family: str, engine: str) -> list[MemberResult]:
    """The uninterrupted 16-member pack."""
    return train(family, PACK, engine)


# Plain and fused give the same bits; batched its own, the same in any pack.
REFERENCE = {"plain": "fused", "fused": "fused", "batched": "batched", "auto": "auto"}


@pytest.mark.parametrize("family", list(CONFIGS))
@pytest.mark.parametrize("engine", list(REFERENCE))
@pytest.mark.parametrize("subset", SUBSETS, ids=lambda s: f"{len(s)}-members")
def test_member_alone_or_in_a_smaller_pack_equals_the_whole_pack(
    family: str, subset: list[int], engine: str
) -> None:
    results = whole_pack(family, REFERENCE[engine])
    for i, result in zip(subset, train(family, [PACK[i] for i in subset], engine), strict=True):
        assert_identical(result, results[i])


def test_auto_trains_a_tiny_cnn_batched_and_an_mlp_fused() -> None:
    """So the "auto" rows above test the batched engine's pack invariance on the CNN,
    and on the MLP that fused (a whole pack) and plain (a part) give the same bits."""
    assert {r.engine for r in whole_pack("cnn", "auto")} == {"batched"}
    assert {r.engine for r in whole_pack("mlp", "auto")} == {"fused"}


@pytest.mark.parametrize("family", list(CONFIGS))
@pytest.mark.parametrize("chunk_size", [1, 5])
def test_chunk_size_does_not_change_a_member(family: str, chunk_size: int) -> None:
    results = whole_pack(family, "fused")
    for a, b in zip(train(family, PACK, "fused", chunk_size=chunk_size), results, strict=True):
        assert_identical(a, b)


def test_adamw_label_smoothing_and_warmup_do_not_depend_on_the_pack() -> None:
    recipe = RECIPE.model_copy(
        update={
            "optimizer": "adamw",
            "schedule": "cosine",
            "warmup_epochs": 0.5,
            "label_smoothing": 0.1,
        }
    )
    pack = PACK[:6]
    fused = train("mlp", pack, "fused", recipe)
    for member, result in zip(pack, fused, strict=True):
        (alone,) = train("mlp", [member], "plain", recipe)
        assert_identical(result, alone)


@pytest.mark.parametrize("engine", ["fused", "batched"])
def test_diverging_member_stops_at_the_same_step_in_any_pack(engine: str) -> None:
    pack = [*PACK[:5], Member("boom", 1e12, 0.0, 1)]
    together = train("mlp", pack, engine)
    assert [r.state for r in together] == ["done"] * 5 + ["diverged"]
    alone_engine = "plain" if engine == "fused" else engine
    for member, result in zip(pack, together, strict=True):
        (alone,) = train("mlp", [member], alone_engine)
        assert_identical(result, alone)


# On an accelerator the divergence check runs every CHECK_EVERY steps, not every
# step (no device wait per step); on a CPU every step, with no snapshot. The
# tests below train the accelerator's windowed path on the CPU.


@pytest.fixture
def windowed(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The CPU checked as an accelerator is: per window, from a snapshot."""
    monkeypatch.setattr(recipe_module, "STEP_CHECKED_DEVICES", frozenset())
    return monkeypatch


@pytest.mark.parametrize("engine", ["plain", "fused", "batched"])
def test_a_cpu_checks_every_step_and_takes_no_snapshot(
    engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_snapshot(*args: object, **kwargs: object) -> None:
        raise AssertionError("snapshot taken on a CPU")

    monkeypatch.setattr(plain_module, "_snapshot", no_snapshot)
    monkeypatch.setattr(Fleet, "snapshot", no_snapshot)
    recipe = RECIPE.model_copy(update={"batch_size": 8})  # 13 steps an epoch
    pack = [*PACK[:3], Member("boom", 300.0, 0.0, 1)]  # diverges at step 8
    results = train("mlp", pack, engine, recipe)
    assert [r.state for r in results] == ["done"] * 3 + ["diverged"]
    assert results[-1].message == "non-finite training loss at epoch 1, step 8"


@pytest.mark.parametrize("engine", ["plain", "fused", "batched"])
def test_windowed_divergence_check_stops_where_a_check_every_step_stops(
    engine: str, windowed: pytest.MonkeyPatch
) -> None:
    recipe = RECIPE.model_copy(update={"batch_size": 8})  # 13 steps an epoch
    pack = [*PACK[:3], Member("boom", 300.0, 0.0, 1)]  # diverges at step 8
    windowed.setattr(recipe_module, "CHECK_EVERY", 1)
    every_step = train("mlp", pack, engine, recipe)
    assert every_step[-1].message == "non-finite training loss at epoch 1, step 8"
    windowed.setattr(recipe_module, "CHECK_EVERY", 5)  # step 8 is inside the second window
    for a, b in zip(train("mlp", pack, engine, recipe), every_step, strict=True):
        assert_identical(a, b)


class NanAtStep(nn.Module):
    """An MLP whose 8th training forward gives NaN; a buffer counts the forwards."""

    def __init__(self, generator: torch.Generator) -> None:
        super().__init__()
        self.inner = maker("mlp")(generator)
        self.register_buffer("forwards", torch.zeros((), dtype=torch.int64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.inner(x)
        if not self.training:
            return out
        self.forwards.add_(1)
        return out + torch.where(self.forwards == 8, math.nan, 0.0)  # no wait for the device


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
@pytest.mark.parametrize("engine", ["plain", "fused", "batched"])
def test_a_failed_window_is_retrained_from_its_snapshot(
    engine: str, optimizer: str, windowed: pytest.MonkeyPatch
) -> None:
    """Weights, optimizer state, buffers and data RNG all rewind: step 8 is found again."""
    recipe = RECIPE.model_copy(update={"batch_size": 8, "optimizer": optimizer})

    def run() -> list[MemberResult]:
        return train_pack(
            make_model=NanAtStep, members=PACK[:3], recipe=recipe, data=DATA, engine=engine
        )

    windowed.setattr(recipe_module, "CHECK_EVERY", 1)
    every_step = run()
    assert {r.message for r in every_step} == {"non-finite training loss at epoch 1, step 8"}
    windowed.setattr(recipe_module, "CHECK_EVERY", 5)
    for a, b in zip(run(), every_step, strict=True):
        assert_identical(a, b)


@pytest.mark.parametrize("engine", ["plain", "fused", "batched"])
def test_training_waits_for_the_device_once_per_window_not_per_step(
    engine: str, windowed: pytest.MonkeyPatch
) -> None:
    waits: list[str] = []
    for name in ("item", "tolist", "__bool__"):
        original = getattr(torch.Tensor, name)

        def counted(self: torch.Tensor, *args, _original=original, _name=name):
            waits.append(_name)
            return _original(self, *args)

        windowed.setattr(torch.Tensor, name, counted)
    recipe = RECIPE.model_copy(update={"batch_size": 1, "epochs": 1})  # 100 steps: two windows
    members = {"plain": PACK[:1], "fused": PACK[:4], "batched": PACK[:3]}[engine]  # one fleet
    train("mlp", members, engine, recipe)
    assert len(waits) <= 10, waits


def test_exact_engines_train_convolutions_channels_last_on_a_cpu() -> None:
    """The layout is a rule of model and device, so a resumed or cut pack keeps it."""
    layouts = {
        (family, engine): {r.memory_format for r in whole_pack(family, engine)}
        for family in CONFIGS
        for engine in ("fused", "batched")
    }
    assert layouts[("cnn", "fused")] == {"torch.channels_last"}
    assert layouts[("mlp", "fused")] == layouts[("cnn", "batched")] == {"torch.contiguous_format"}
    (alone,) = train("cnn", PACK[:1], "plain")
    assert alone.memory_format == "torch.channels_last"
