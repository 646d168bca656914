"""The fused engine against the plain one: member i of a fleet is member i trained alone."""

from __future__ import annotations

import functools
import math

import pytest
import torch
from torch import Tensor, nn

from minarch.data import Dataset
from minarch.execute.policy import memory_share
from minarch.models import build_model, example, family_names
from minarch.store import EPOCH_METRICS
from minarch.train import FusedOptions, Hooks, Member, Recipe, train_fused, train_pack
from minarch.train import fused as fused_module
from minarch.train.engine import (
    MemoryPlan,
    activations_per_sample,
    choose_engine,
    memory_budget,
    memory_plan,
)
from minarch.train.fleet import linear_chain
from tests.synthetic import class_patterns

CLASSES = 4
RECIPE = Recipe(batch_size=40, epochs=2, schedule="step", augmentation="crop-flip")


@functools.cache
def patterns(shape: tuple[int, ...], n_train: int, n_val: int) -> Dataset:
    return class_patterns(shape, CLASSES, n_train, n_val, noise=30)


def dataset(family: str) -> Dataset:
    """Class patterns of the family's example input; fewer samples for the expensive deep nets."""
    shape = example(family).input_shape
    return patterns(shape, 64, 32) if is_deep(family) else patterns(shape, 120, 48)


def is_deep(family: str) -> bool:
    """Over 20 conv and linear layers: trained gently and compared more loosely (see GENTLE)."""
    model = maker(family)(torch.Generator())
    return sum(isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)) for m in model.modules()) > 20


def maker(family: str):
    config, shape = example(family).config, example(family).input_shape

    def make(generator: torch.Generator) -> nn.Module:
        return build_model(family, config, shape, CLASSES, generator=generator)

    return make


def members(*specs: tuple[float, float, int]) -> list[Member]:
    return [Member(f"m{i}", lr, wd, seed) for i, (lr, wd, seed) in enumerate(specs)]


# Two seeds, one of them shared: both the per-seed batches and their reuse are exercised.
MIXED = members((0.01, 1e-4, 0), (0.005, 0.0, 1), (0.02, 1e-3, 0))
# Deep nets on 8×8 inputs have BN channels with almost no batch variance, which
# amplify rounding up to 1/sqrt(eps) ≈ 300×; small steps and a looser tolerance.
GENTLE = members((1e-4, 1e-4, 0), (5e-5, 0.0, 1))


def run(family: str, pack: list[Member], engine: str, recipe: Recipe = RECIPE, **options):
    data = dataset(family)
    if engine == "fused":
        return train_fused(
            make_model=maker(family),
            members=pack,
            recipe=recipe,
            data=data,
            hooks=Hooks(),
            options=FusedOptions(**options),
        )
    return train_pack(
        make_model=maker(family), members=pack, recipe=recipe, data=data, engine=engine
    )


def assert_same_run(
    fused, plain, rtol: float = 1e-3, atol: float = 1e-5, engine: str = "fused"
) -> None:
    """Same state, curve and weights (BN running statistics included) up to float rounding."""
    assert (fused.key, fused.state, fused.message) == (plain.key, plain.state, plain.message)
    assert fused.engine == engine
    assert len(fused.epochs) == len(plain.epochs)
    for f, p in zip(fused.epochs, plain.epochs, strict=True):
        assert f.epoch == p.epoch and f.lr == pytest.approx(p.lr)
        for field in (m for m in EPOCH_METRICS if m not in ("lr", "wall_time")):
            assert getattr(f, field) == pytest.approx(getattr(p, field), rel=rtol, abs=atol), field
    assert fused.state_dict.keys() == plain.state_dict.keys()
    for key, value in plain.state_dict.items():
        value = value.float()
        scale = 1.0 + value[value.isfinite()].abs().max().item() if value.isfinite().any() else 1.0
        torch.testing.assert_close(
            fused.state_dict[key].float(), value, rtol=0, atol=rtol * scale, equal_nan=True, msg=key
        )


@pytest.mark.slow  # 4-50 s per family; the fast tests compare MLPs and CNNs below
@pytest.mark.parametrize("family", family_names())
def test_fused_member_equals_plain_member(family: str) -> None:
    cheap = not is_deep(family)
    pack = MIXED if cheap else GENTLE
    recipe = RECIPE if cheap else RECIPE.model_copy(update={"epochs": 1})
    fused, plain = run(family, pack, "fused", recipe), run(family, pack, "plain", recipe)
    for f, p in zip(fused, plain, strict=True):
        assert_same_run(f, p, rtol=1e-3 if cheap else 5e-3)


@pytest.mark.parametrize("family", family_names())
def test_batched_member_matches_plain_member(family: str) -> None:
    """The GPU's engine, run on the CPU: the same training up to float32 round-off.

    Two epochs of 3 steps (one for the deep nets), BatchNorm running statistics
    included: curve points within 1e-3 relative (5e-3 for the deep nets, whose
    near-constant BN channels amplify rounding), weights within that fraction
    of their largest magnitude.
    """
    cheap = not is_deep(family)
    pack = MIXED if cheap else GENTLE
    recipe = RECIPE if cheap else RECIPE.model_copy(update={"epochs": 1})
    batched, plain = run(family, pack, "batched", recipe), run(family, pack, "plain", recipe)
    for b, p in zip(batched, plain, strict=True):
        assert_same_run(b, p, rtol=1e-3 if cheap else 5e-3, engine="batched")


def test_batched_vit_trains_without_vmaps_batching_rule_warning() -> None:
    """vmap runs the CPU attention kernel member by member and warns about it on every
    new call site; minarch measured that loop as fast as the alternatives and keeps
    the warning from the user's terminal."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        (result, *_) = run("vit", MIXED, "batched")
    assert result.engine == "batched" and result.state == "done"
    assert not [w for w in caught if "batching rule" in str(w.message)]


@pytest.mark.parametrize("family", ["mlp", "cnn"])
def test_adamw_and_label_smoothing_match(family: str) -> None:
    recipe = RECIPE.model_copy(
        update={"optimizer": "adamw", "label_smoothing": 0.1, "schedule": "cosine"}
    )
    fused, plain = run(family, MIXED, "fused", recipe), run(family, MIXED, "plain", recipe)
    for f, p in zip(fused, plain, strict=True):
        assert_same_run(f, p)


@pytest.mark.parametrize("family", ["mlp", "cnn"])
def test_one_seed_grid_shares_the_batch_and_matches(family: str) -> None:
    grid = members(*((lr, wd, 7) for lr in (0.003, 0.01, 0.03) for wd in (0.0, 1e-3)))
    fused, plain = run(family, grid, "fused"), run(family, grid, "plain")
    for f, p in zip(fused, plain, strict=True):
        assert_same_run(f, p)
    assert len({f.epochs[-1].train_loss for f in fused}) == len(grid)


def test_learning_rates_give_different_trajectories() -> None:
    slow, fast = run("mlp", members((0.001, 0.0, 3), (0.1, 0.0, 3)), "fused")
    assert slow.epochs[0].train_loss != pytest.approx(fast.epochs[0].train_loss, rel=1e-3)
    assert fast.epochs[-1].train_loss < slow.epochs[-1].train_loss
    assert not torch.allclose(
        slow.state_dict["layers.1.weight"], fast.state_dict["layers.1.weight"]
    )


@pytest.mark.parametrize("family", ["mlp", "cnn"])
def test_diverging_member_stops_alone(family: str) -> None:
    # BatchNorm makes the CNN scale-invariant: only overflow (lr 1e30) makes it diverge.
    pack = members((0.01, 1e-4, 1), (1e12 if family == "mlp" else 1e30, 0.0, 2), (0.02, 0.0, 1))
    fused = run(family, pack, "fused")
    assert [r.state for r in fused] == ["done", "diverged", "done"]
    boom = fused[1]
    (boom_alone,) = run(family, [pack[1]], "plain")
    assert boom.message == boom_alone.message
    assert boom.message.startswith("non-finite training loss at epoch 1, step ")
    assert_same_run(boom, boom_alone)
    for i in (0, 2):
        (alone,) = run(family, [pack[i]], "plain")
        assert_same_run(fused[i], alone)
        assert all(
            math.isfinite(e.train_loss) and math.isfinite(e.val_loss) for e in fused[i].epochs
        )


def test_non_finite_validation_loss_stops_the_member() -> None:
    class NanInEval(nn.Module):
        """Trains normally but evaluates to NaN, like weights blown up by an epoch's last step."""

        def __init__(self, generator: torch.Generator) -> None:
            super().__init__()
            self.inner = maker("mlp")(generator)

        def forward(self, x: Tensor) -> Tensor:
            out = self.inner(x)
            return out if self.training else out * math.nan

    assert linear_chain(NanInEval(torch.Generator())) is None  # the branch rules the fast path out
    results = train_fused(
        make_model=NanInEval, members=MIXED, recipe=RECIPE, data=dataset("mlp"), hooks=Hooks()
    )
    assert {r.message for r in results} == {"non-finite validation loss after epoch 1"}
    assert all(r.state == "diverged" and len(r.epochs) == 1 for r in results)


def test_chunking_gives_the_same_results() -> None:
    pack = members(*((0.01 * (i + 1), 1e-4, i % 2) for i in range(5)))
    recipe = RECIPE.model_copy(update={"epochs": 1})
    whole = run("cnn", pack, "fused", recipe)
    chunked = run("cnn", pack, "fused", recipe, chunk_size=2)
    for a, b in zip(whole, chunked, strict=True):
        assert_same_run(a, b, rtol=1e-5)


def per_member_bytes(family: str, batch_size: int) -> tuple[int, int]:
    """What the memory plan counts per member, spelled out: (held between steps, in a step)."""
    model, data = maker(family)(torch.Generator()), dataset(family)
    held = 4 * 7 * sum(p.numel() for p in model.parameters())  # weights, grads, states, snapshots
    inputs = math.prod(data.train_x.shape[1:])
    activations = activations_per_sample(model, data)
    return held, held + 4 * batch_size * (inputs + 2 * activations)


def test_memory_plan_fits_members_then_the_evaluation_batch_in_the_budget() -> None:
    model, data = maker("cnn")(torch.Generator()), dataset("cnn")
    held, member = per_member_bytes("cnn", 40)
    per_image = 4 * (math.prod(data.train_x.shape[1:]) + activations_per_sample(model, data))
    budget = 3 * member + 1
    plan = memory_plan(model, data, 40, 3, budget=budget)
    assert plan.members == 3
    assert plan.eval_images == int((budget - 3 * held) // (3 * per_image))  # not 1024 // members
    assert memory_plan(model, data, 40, 3, budget=held) == MemoryPlan(1, 32)
    assert memory_plan(model, data, 40, 3, budget=1e15).eval_images == 4096
    assert memory_plan(model, data, 40, 10**6, budget=10 * member).members == 10


def test_a_pack_over_its_memory_share_is_cut_before_it_starts(monkeypatch) -> None:
    budgets: list[float] = []

    def budget(device: torch.device, share: float) -> float:
        budgets.append(share)
        return share * 10 * per_member_bytes("cnn", RECIPE.batch_size)[1]

    fleets: list[int] = []
    original = fused_module.Fleet

    def counted(models, *args, **kwargs):
        fleets.append(len(models))
        return original(models, *args, **kwargs)

    monkeypatch.setattr(fused_module, "memory_budget", budget)
    monkeypatch.setattr(fused_module, "Fleet", counted)
    pack = members(*((0.01, 1e-4, seed) for seed in range(5)))
    recipe = RECIPE.model_copy(update={"epochs": 1})
    results = run("cnn", pack, "fused", recipe, memory_share=0.25)  # 2.5 members' worth
    assert budgets == [0.25] and fleets == [2, 2, 1]
    assert [r.key for r in results] == [m.key for m in pack]


def test_memory_share_is_the_process_share_of_its_device() -> None:
    cpu = torch.device("cpu")
    assert memory_share(cpu, 2, None) == 0.5
    assert memory_share(torch.device("cuda"), 1, 0.25) == 0.25  # a Ray task's --gpus-per-pack
    assert memory_budget(cpu, 0.5) == pytest.approx(memory_budget(cpu, 1.0) / 2)


def test_auto_picks_an_engine_and_records_it() -> None:
    cpu = torch.device("cpu")
    mlp = build_model("mlp", {"depth": 1, "width": 64}, (1, 28, 28), CLASSES)
    cnn = maker("cnn")(torch.Generator())  # 148 kFLOP per sample
    assert choose_engine(mlp, (1, 28, 28), 8, cpu) == "fused"
    assert choose_engine(mlp, (1, 28, 28), 1, cpu) == "plain"
    assert choose_engine(cnn, (3, 8, 8), 8, cpu) == "plain"
    # On a GPU, and for tiny models on a CPU, batched whatever the member count;
    # but a tiny MLP trains exactly (fused or plain), which needs no ghost lanes.
    tiny = build_model("cnn", {"depth": 2, "channels": 4}, (1, 8, 8), CLASSES)
    tiny_mlp = build_model("mlp", {"depth": 1, "width": 4}, (1, 8, 8), CLASSES)
    for count in (1, 3, 8):
        assert choose_engine(cnn, (3, 8, 8), count, torch.device("cuda")) == "batched"
        assert choose_engine(tiny, (1, 8, 8), count, cpu) == "batched"
        assert choose_engine(tiny_mlp, (1, 8, 8), count, cpu) == ("fused" if count > 3 else "plain")
    grid = members(*((0.01, wd, 0) for wd in (0.0, 1e-4, 1e-3, 1e-2)))
    assert {r.engine for r in run("cnn", grid, "auto")} == {"plain"}
    assert {r.engine for r in run("cnn", grid, "fused")} == {"fused"}
    assert {r.engine for r in run("cnn", grid, "batched")} == {"batched"}


@pytest.mark.parametrize("engine", ["fused", "batched"])
def test_hooks_see_every_member_step_and_epoch_in_one_call_per_step(engine: str) -> None:
    class Counting(Hooks):
        def __init__(self) -> None:
            self.calls = 0
            self.steps: list[tuple[str, int, int]] = []
            self.epochs: list[str] = []

        def on_step(self, members, epoch: int, step: int, steps_per_epoch: int) -> None:
            self.calls += 1
            self.steps += [(member.key, epoch, step) for member in members]

        def on_epoch(self, member: Member, record) -> None:
            self.epochs.append(member.key)

    hooks = Counting()
    data = dataset("mlp")
    options = FusedOptions(batched=engine == "batched", lanes=3 if engine == "batched" else None)
    train_fused(
        make_model=maker("mlp"),
        members=MIXED,
        recipe=RECIPE,
        data=data,
        hooks=hooks,
        options=options,
    )
    steps = math.ceil(len(data.train_y) / RECIPE.batch_size)
    assert sorted(hooks.steps) == sorted(
        (m.key, e, s) for m in MIXED for e in (1, 2) for s in range(1, steps + 1)
    )
    fleets = 1 if engine == "fused" else 2  # MIXED has two members of seed 0: two fleets of lanes
    assert hooks.calls == fleets * 2 * steps
    assert sorted(hooks.epochs) == sorted([m.key for m in MIXED] * 2)


def test_gpu_options_run_on_cpu() -> None:
    """bf16 and channels_last also train on the CPU."""
    recipe = RECIPE.model_copy(update={"precision": "bf16"})
    for family in ("mlp", "cnn"):
        grid = members((0.01, 0.0, 0), (0.02, 0.0, 0))
        results = run(family, grid, "fused", recipe, batched=True, channels_last=True)
        assert all(r.state == "done" and math.isfinite(r.epochs[-1].val_loss) for r in results)


def test_global_rng_is_untouched() -> None:
    before = torch.random.get_rng_state()
    run("cnn", MIXED, "fused")
    assert torch.equal(torch.random.get_rng_state(), before)
