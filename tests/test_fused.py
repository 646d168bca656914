"""The fused engine against the plain one: member i of a fleet is member i trained alone."""

from __future__ import annotations

import functools
import math

import pytest
import torch
from torch import Tensor, nn

from minarch.data import Dataset
from minarch.models import build_model, example, family_names
from minarch.train import FusedOptions, Hooks, Member, Recipe, train_fused, train_pack
from minarch.train.engine import choose_engine, fleet_chunk_size
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


def assert_same_run(fused, plain, rtol: float = 1e-3, atol: float = 1e-5) -> None:
    """Same state, curve and weights (BN running statistics included) up to float rounding."""
    assert (fused.key, fused.state, fused.message) == (plain.key, plain.state, plain.message)
    assert fused.engine == "fused"
    assert len(fused.epochs) == len(plain.epochs)
    for f, p in zip(fused.epochs, plain.epochs, strict=True):
        assert f.epoch == p.epoch and f.lr == pytest.approx(p.lr)
        for field in ("train_loss", "train_acc", "val_loss", "val_acc", "val_top5"):
            assert getattr(f, field) == pytest.approx(getattr(p, field), rel=rtol, abs=atol), field
    assert fused.state_dict.keys() == plain.state_dict.keys()
    for key, value in plain.state_dict.items():
        value = value.float()
        scale = 1.0 + value[value.isfinite()].abs().max().item() if value.isfinite().any() else 1.0
        torch.testing.assert_close(
            fused.state_dict[key].float(), value, rtol=0, atol=rtol * scale, equal_nan=True, msg=key
        )


@pytest.mark.parametrize("family", family_names())
def test_fused_member_equals_plain_member(family: str) -> None:
    cheap = not is_deep(family)
    pack = MIXED if cheap else GENTLE
    recipe = RECIPE if cheap else RECIPE.model_copy(update={"epochs": 1})
    fused, plain = run(family, pack, "fused", recipe), run(family, pack, "plain", recipe)
    for f, p in zip(fused, plain, strict=True):
        assert_same_run(f, p, rtol=1e-3 if cheap else 5e-3)


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


def test_chunk_size_estimate_is_positive_and_shrinks_with_the_model() -> None:
    small = fleet_chunk_size(maker("mlp")(torch.Generator()), dataset("mlp"), 128)
    large = fleet_chunk_size(maker("resnet_cifar")(torch.Generator()), dataset("resnet_cifar"), 128)
    assert small >= large >= 1


def test_auto_picks_an_engine_and_records_it() -> None:
    cpu = torch.device("cpu")
    mlp, cnn = maker("mlp")(torch.Generator()), maker("cnn")(torch.Generator())
    assert choose_engine(mlp, 8, cpu) == "fused"
    assert choose_engine(mlp, 1, cpu) == "plain"
    assert choose_engine(cnn, 8, cpu) == "plain"
    assert choose_engine(maker("vit")(torch.Generator()), 8, cpu) == "plain"
    assert choose_engine(cnn, 8, torch.device("cuda")) == "fused"
    grid = members(*((0.01, wd, 0) for wd in (0.0, 1e-4, 1e-3, 1e-2)))
    assert {r.engine for r in run("mlp", grid, "auto")} == {"fused"}
    assert {r.engine for r in run("cnn", grid, "auto")} == {"plain"}
    assert {r.engine for r in run("cnn", grid, "fused")} == {"fused"}


def test_hooks_see_every_member_step_and_epoch() -> None:
    class Counting(Hooks):
        def __init__(self) -> None:
            self.steps: list[tuple[str, int, int]] = []
            self.epochs: list[str] = []

        def on_step(self, member: Member, epoch: int, step: int, steps_per_epoch: int) -> None:
            self.steps.append((member.key, epoch, step))

        def on_epoch(self, member: Member, record) -> None:
            self.epochs.append(member.key)

    hooks = Counting()
    data = dataset("mlp")
    train_fused(make_model=maker("mlp"), members=MIXED, recipe=RECIPE, data=data, hooks=hooks)
    steps = math.ceil(len(data.train_y) / RECIPE.batch_size)
    assert sorted(hooks.steps) == sorted(
        (m.key, e, s) for m in MIXED for e in (1, 2) for s in range(1, steps + 1)
    )
    assert sorted(hooks.epochs) == sorted([m.key for m in MIXED] * 2)


def test_gpu_options_run_on_cpu() -> None:
    """bf16 autocast and channels_last are GPU options; on the CPU they still train."""
    for family in ("mlp", "cnn"):
        grid = members((0.01, 0.0, 0), (0.02, 0.0, 0))
        results = run(family, grid, "fused", autocast=torch.bfloat16, channels_last=True)
        assert all(r.state == "done" and math.isfinite(r.epochs[-1].val_loss) for r in results)


def test_global_rng_is_untouched() -> None:
    before = torch.random.get_rng_state()
    run("cnn", MIXED, "fused")
    assert torch.equal(torch.random.get_rng_state(), before)
