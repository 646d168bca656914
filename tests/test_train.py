"""The pack trainer: schedules, learning, determinism, isolation of members, hooks."""

from __future__ import annotations

import math
from dataclasses import replace

import pydantic
import pytest
import torch
from torch import Tensor, nn

from minarch.errors import MinarchError
from minarch.train import (
    ENGINES,
    EpochRecord,
    Hooks,
    Member,
    Recipe,
    TrainError,
    evaluate,
    lr_factor,
    train_pack,
)
from minarch.train.plain import TRAIN_EVAL_MAX, eval_batch_size, evaluate_split, train_eval_split
from tests.synthetic import class_patterns

NUM_CLASSES = 3
INPUT_SHAPE = (1, 6, 6)


DATA = class_patterns(INPUT_SHAPE, NUM_CLASSES, 500, 300, noise=15)
RECIPE = Recipe(batch_size=128, epochs=3, schedule="step")  # 4 steps per epoch, last one partial


def make_mlp(generator: torch.Generator) -> nn.Module:
    """Every weight from ``generator``: built on "meta" so torch's global RNG stays unused."""
    with torch.device("meta"):
        model = nn.Sequential(
            nn.Flatten(), nn.Linear(36, 16), nn.ReLU(), nn.Linear(16, NUM_CLASSES)
        )
    model.to_empty(device="cpu")
    for layer in model:
        if isinstance(layer, nn.Linear):
            nn.init.kaiming_normal_(layer.weight, generator=generator)
            nn.init.normal_(layer.bias, std=0.1, generator=generator)
    return model


def member(key: str = "a", lr: float = 0.05, weight_decay: float = 1e-4, seed: int = 0) -> Member:
    return Member(key=key, lr=lr, weight_decay=weight_decay, seed=seed)


def train(*members: Member, recipe: Recipe = RECIPE, engine: str = "plain", **kwargs):
    """The plain engine unless told: "auto" trains this tiny MLP batched."""
    return train_pack(
        make_model=make_mlp,
        members=members,
        recipe=recipe,
        data=DATA,
        device="cpu",
        engine=engine,
        **kwargs,
    )


def curve(result) -> list[tuple]:
    """A result's numbers without its wall times, for exact comparison."""
    return [replace(r, wall_time=0.0) for r in result.epochs]


def same_weights(a: dict[str, Tensor], b: dict[str, Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# lr_factor


def test_constant_schedule_is_one() -> None:
    recipe = Recipe(schedule="constant", epochs=10)
    assert [lr_factor(recipe, p, 10) for p in (0.0, 3.3, 9.9)] == [1.0, 1.0, 1.0]


def test_step_schedule_drops_by_gamma_at_milestones() -> None:
    recipe = Recipe(schedule="step", epochs=10, milestones=(0.5, 0.75), gamma=0.1)
    factors = [lr_factor(recipe, p, 10) for p in (0.0, 4.9, 5.0, 7.4, 7.5, 9.9)]
    assert factors == pytest.approx([1.0, 1.0, 0.1, 0.1, 0.01, 0.01])


def test_cosine_schedule_endpoints_and_midpoint() -> None:
    recipe = Recipe(schedule="cosine", epochs=10)
    assert lr_factor(recipe, 0.0, 10) == pytest.approx(1.0)
    assert lr_factor(recipe, 5.0, 10) == pytest.approx(0.5)
    assert lr_factor(recipe, 10.0, 10) == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(recipe, 2.5, 10) > lr_factor(recipe, 7.5, 10)


def test_warmup_ramps_linearly_then_holds() -> None:
    recipe = Recipe(schedule="constant", epochs=10, warmup_epochs=2.0)
    steps_per_epoch = 4
    ramp = [lr_factor(recipe, s / steps_per_epoch, steps_per_epoch) for s in range(8)]
    assert ramp == pytest.approx([(s + 1) / 8 for s in range(8)])
    assert lr_factor(recipe, 2.0, steps_per_epoch) == 1.0
    assert lr_factor(recipe, 6.0, steps_per_epoch) == 1.0


def test_warmup_multiplies_the_schedule() -> None:
    recipe = Recipe(schedule="cosine", epochs=10, warmup_epochs=1.0)
    assert lr_factor(recipe, 0.5, 2) == pytest.approx(
        lr_factor(recipe.model_copy(update={"warmup_epochs": 0.0}), 0.5, 2)
    )
    assert lr_factor(recipe, 0.0, 2) == pytest.approx(0.5)


# training


def test_tiny_mlp_learns() -> None:
    (result,) = train(
        member(lr=0.1), recipe=RECIPE.model_copy(update={"epochs": 5, "schedule": "constant"})
    )
    assert result.state == "done" and result.message is None and result.engine == "plain"
    assert [r.epoch for r in result.epochs] == [1, 2, 3, 4, 5]
    assert result.epochs[-1].val_acc > 0.9  # chance is 1/3
    assert result.epochs[-1].train_loss < result.epochs[0].train_loss
    assert all(0.0 <= r.train_acc <= 1.0 and 0.0 <= r.val_acc <= 1.0 for r in result.epochs)
    assert all(r.wall_time > 0 for r in result.epochs)
    assert [r.wall_time for r in result.epochs] == sorted(r.wall_time for r in result.epochs)


def test_training_metrics_are_measured_in_eval_mode_on_a_fixed_subset() -> None:
    images, labels = train_eval_split(DATA)
    assert len(images) == len(DATA.val_x) == 300  # as large as the validation split
    assert torch.equal(images, DATA.train_x[torch.arange(300) * 500 // 300])
    assert labels.unique().numel() == NUM_CLASSES
    (result,) = train(member(lr=0.1), recipe=RECIPE.model_copy(update={"epochs": 2}))
    model = make_mlp(torch.Generator())
    model.load_state_dict(result.state_dict)
    loss, acc, _ = evaluate_split(model, DATA, images, labels)
    last = result.epochs[-1]
    assert (last.train_eval_loss, last.train_eval_acc) == (loss, acc)
    assert (last.train_eval_loss, last.train_eval_acc) != (last.train_loss, last.train_acc)


def test_training_subset_is_capped() -> None:
    many = torch.zeros(2 * TRAIN_EVAL_MAX, *INPUT_SHAPE, dtype=torch.uint8)
    labels = torch.zeros(2 * TRAIN_EVAL_MAX, dtype=torch.long)
    big = replace(DATA, train_x=many, train_y=labels, val_x=many, val_y=labels)
    assert len(train_eval_split(big)[0]) == TRAIN_EVAL_MAX


def test_build_model_mlp_trains() -> None:
    from minarch.models import build_model

    def make(generator: torch.Generator) -> nn.Module:
        return build_model("mlp", {"width": 16}, INPUT_SHAPE, NUM_CLASSES, generator=generator)

    recipe = RECIPE.model_copy(update={"epochs": 5, "schedule": "constant"})
    (a,), (b,) = (
        train_pack(make_model=make, members=[member(lr=0.1)], recipe=recipe, data=DATA)
        for _ in range(2)
    )
    assert a.state == "done" and a.epochs[-1].val_acc > 0.9
    assert curve(a) == curve(b)


def test_same_seed_is_bit_equal() -> None:
    (a,), (b,) = train(member(seed=7)), train(member(seed=7))
    assert curve(a) == curve(b)
    assert same_weights(a.state_dict, b.state_dict)


def test_member_in_pack_equals_member_alone() -> None:
    b = member("b", lr=0.02, seed=2)
    pack = train(member("a", seed=1), b, member("c", lr=0.1, seed=3))
    reversed_pack = train(member("c", lr=0.1, seed=3), b, member("a", seed=1))
    (alone,) = train(b)
    assert [r.key for r in pack] == ["a", "b", "c"]
    for trained in (pack[1], reversed_pack[1]):
        assert curve(trained) == curve(alone)
        assert same_weights(trained.state_dict, alone.state_dict)


def test_different_hyperparameters_give_different_results() -> None:
    base, faster, other_seed = train(member("a"), member("b", lr=0.2), member("c", seed=1))
    assert curve(base) != curve(faster)
    assert not same_weights(base.state_dict, faster.state_dict)
    assert not same_weights(base.state_dict, other_seed.state_dict)


def test_divergent_member_is_isolated() -> None:
    results = train(member("a", seed=1), member("boom", lr=1e12, seed=2), member("c", seed=3))
    assert [r.state for r in results] == ["done", "diverged", "done"]
    boom = results[1]
    assert boom.message.startswith("non-finite training loss at epoch 1, step ")
    assert boom.epochs == ()
    assert boom.state_dict.keys() == results[0].state_dict.keys()
    for r in (results[0], results[2]):
        assert len(r.epochs) == RECIPE.epochs and r.message is None
        assert all(
            math.isfinite(v)
            for e in r.epochs
            for v in (e.train_loss, e.val_loss, e.val_acc, e.train_acc)
        )
    (alone,) = train(member("c", seed=3))
    assert curve(alone) == curve(results[2])


def test_non_finite_validation_loss_stops_the_member() -> None:
    class NanInEval(nn.Module):
        """Trains normally but evaluates to NaN, like weights blown up by an epoch's last step."""

        def __init__(self, generator: torch.Generator) -> None:
            super().__init__()
            self.inner = make_mlp(generator)

        def forward(self, x: Tensor) -> Tensor:
            out = self.inner(x)
            return out if self.training else out * math.nan

    hooks = Counting()
    (result,) = train_pack(
        make_model=NanInEval, members=[member()], recipe=RECIPE, data=DATA, hooks=hooks
    )
    assert result.state == "diverged"
    assert result.message == "non-finite validation loss after epoch 1"
    assert len(result.epochs) == 1 and len(hooks.epochs) == 1


def test_label_smoothing_changes_training_loss() -> None:
    (plain,) = train(member())
    (smoothed,) = train(member(), recipe=RECIPE.model_copy(update={"label_smoothing": 0.2}))
    assert smoothed.epochs[0].train_loss != pytest.approx(plain.epochs[0].train_loss, rel=1e-3)
    assert smoothed.state == "done"


def test_adamw_trains_and_differs_from_sgd() -> None:
    adamw = RECIPE.model_copy(update={"optimizer": "adamw", "epochs": 5, "schedule": "constant"})
    (result,) = train(member(lr=1e-2, weight_decay=1e-2), recipe=adamw)
    (sgd,) = train(
        member(lr=1e-2, weight_decay=1e-2), recipe=adamw.model_copy(update={"optimizer": "sgd"})
    )
    assert result.state == "done" and result.epochs[-1].val_acc > 0.9
    assert curve(result) != curve(sgd)


def test_augmentation_changes_training_and_stays_deterministic() -> None:
    recipe = RECIPE.model_copy(update={"augmentation": "crop-flip"})
    (plain,), (a,), (b,) = (
        train(member()),
        train(member(), recipe=recipe),
        train(member(), recipe=recipe),
    )
    assert a.state == "done"
    assert curve(plain) != curve(a)
    assert curve(a) == curve(b) and same_weights(a.state_dict, b.state_dict)


class Counting(Hooks):
    def __init__(self) -> None:
        self.steps: list[tuple[str, int, int, int]] = []
        self.epochs: list[tuple[str, EpochRecord]] = []

    def on_step(self, members, epoch: int, step: int, steps_per_epoch: int) -> None:
        self.steps += [(member.key, epoch, step, steps_per_epoch) for member in members]

    def on_epoch(self, member: Member, record: EpochRecord) -> None:
        self.epochs.append((member.key, record))


def test_hooks_called_after_every_step_and_epoch() -> None:
    hooks = Counting()
    results = train(member("a"), member("b", seed=1), hooks=hooks)
    steps_per_epoch = math.ceil(500 / 128)
    expected = [
        (key, epoch, step, steps_per_epoch)
        for key in "ab"
        for epoch in range(1, RECIPE.epochs + 1)
        for step in range(1, steps_per_epoch + 1)
    ]
    assert hooks.steps == expected
    assert hooks.epochs == [(r.key, e) for r in results for e in r.epochs]


def test_hook_exception_aborts_the_pack() -> None:
    class Abort(Hooks):
        def on_step(self, members, epoch: int, step: int, steps_per_epoch: int) -> None:
            if step == 2:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(member(), hooks=Abort())


def test_state_dict_is_on_cpu_and_loads() -> None:
    (result,) = train(member())
    assert all(t.device.type == "cpu" for t in result.state_dict.values())
    model = make_mlp(torch.Generator().manual_seed(0))
    model.load_state_dict(result.state_dict)


def test_records_lr_follows_the_schedule() -> None:
    recipe = RECIPE.model_copy(update={"epochs": 4, "schedule": "step"})
    (result,) = train(member(lr=0.1), recipe=recipe)
    assert [r.lr for r in result.epochs] == pytest.approx([0.1, 0.1, 0.01, 0.001])
    cosine = recipe.model_copy(update={"schedule": "cosine", "warmup_epochs": 0.5})
    (result,) = train(member(lr=0.1), recipe=cosine)
    last_steps = [(4 * e - 1) / 4 for e in range(1, 5)]  # 4 steps per epoch
    assert [r.lr for r in result.epochs] == pytest.approx(
        [0.1 * lr_factor(cosine, p, 4) for p in last_steps]
    )


def test_top5_is_one_with_at_most_five_classes() -> None:
    (result,) = train(member(lr=1e-6))  # untrained enough that top-1 is far from 1
    assert all(r.val_top5 == 1.0 for r in result.epochs)
    assert result.epochs[0].val_acc < 1.0


def test_global_rng_is_untouched() -> None:
    before = torch.random.get_rng_state()
    train(member())
    assert torch.equal(torch.random.get_rng_state(), before)


# errors


def test_unknown_engine_lists_valid_ones() -> None:
    assert ENGINES == ("auto", "plain", "fused", "batched")
    with pytest.raises(ValueError, match="auto, plain"):
        train(member(), engine="warp")
    with pytest.raises(MinarchError):
        train(member(), engine="warp")
    (result,) = train(member(), engine="plain")
    assert result.engine == "plain"


def test_duplicate_member_keys_are_rejected() -> None:
    with pytest.raises(TrainError, match="unique"):
        train(member("a"), member("a", seed=1))


def test_empty_validation_set_is_rejected() -> None:
    empty = replace(DATA, val_x=DATA.val_x[:0], val_y=DATA.val_y[:0])
    with pytest.raises(TrainError, match="validation"):
        train_pack(make_model=make_mlp, members=[member()], recipe=RECIPE, data=empty)


@pytest.mark.parametrize(
    "bad",
    [
        {"optimizer": "rmsprop"},
        {"schedule": "linear"},
        {"augmentation": "mixup"},
        {"batch_size": 0},
        {"epochs": 0},
        {"milestones": (0.75, 0.5)},
        {"label_smoothing": 1.0},
        {"warmup_epochs": -1.0},
    ],
)
def test_bad_recipe_is_rejected(bad: dict) -> None:
    with pytest.raises(pydantic.ValidationError, match=next(iter(bad))):
        Recipe(**bad)


def test_bad_member_is_rejected() -> None:
    with pytest.raises(TrainError, match="lr"):
        Member(key="x", lr=float("nan"), weight_decay=0.0, seed=0)
    with pytest.raises(TrainError, match="weight_decay"):
        Member(key="x", lr=0.1, weight_decay=-1.0, seed=0)


def test_evaluation_does_not_depend_on_its_batch_size() -> None:
    model = make_mlp(torch.Generator().manual_seed(0))
    whole = evaluate(model, DATA, batch_size=len(DATA.val_y))
    for batch in (None, 7, 256):  # 300 images: uneven last batches, and the CPU default
        assert evaluate(model, DATA, batch_size=batch) == pytest.approx(whole, rel=1e-5)
    assert eval_batch_size(torch.device("cpu")) < eval_batch_size(torch.device("cuda"))


# precision and determinism


def test_numerics_set_true_float32_and_autotuning_for_a_pack_then_restore() -> None:
    from minarch.train.precision import numerics

    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    before = (matmul.allow_tf32, cudnn.allow_tf32, cudnn.benchmark, cudnn.deterministic)
    cudnn.allow_tf32 = True  # cuDNN's own default: TF32 convolutions
    with numerics("fp32", deterministic=False):
        assert (matmul.allow_tf32, cudnn.allow_tf32, cudnn.benchmark) == (False, False, True)
        assert not torch.are_deterministic_algorithms_enabled()
    with numerics("tf32", deterministic=True):
        assert (matmul.allow_tf32, cudnn.allow_tf32) == (True, True)
        assert (cudnn.benchmark, cudnn.deterministic) == (False, True)
        assert torch.are_deterministic_algorithms_enabled()
    assert cudnn.allow_tf32 and not torch.are_deterministic_algorithms_enabled()
    matmul.allow_tf32, cudnn.allow_tf32, cudnn.benchmark, cudnn.deterministic = before


@pytest.mark.parametrize("engine", ["plain", "fused", "batched"])
def test_bf16_trains_on_the_cpu_and_differs_from_fp32(engine: str) -> None:
    recipe = RECIPE.model_copy(update={"epochs": 2, "schedule": "constant"})
    (fp32,) = train(member(lr=0.1), recipe=recipe, engine=engine)
    bf16_recipe = recipe.model_copy(update={"precision": "bf16"})
    (bf16,) = train(member(lr=0.1), recipe=bf16_recipe, engine=engine)
    assert bf16.state == "done" and bf16.epochs[-1].val_acc > 0.8
    assert bf16.epochs[-1].train_loss != fp32.epochs[-1].train_loss
    assert all(v.dtype == torch.float32 for v in bf16.state_dict.values())


def test_convolutions_train_channels_last_on_a_cpu_when_at_least_4_channels_wide() -> None:
    from minarch.models import build_model
    from minarch.train.layout import memory_format

    def layout(channels: int, device: str = "cpu") -> torch.memory_format:
        model = build_model("cnn", {"depth": 2, "channels": channels}, (1, 28, 28), 10)
        return memory_format(model, torch.device(device))

    assert [layout(c) for c in (1, 2, 3)] == [torch.contiguous_format] * 3
    assert [layout(c) for c in (4, 32)] == [torch.channels_last] * 2
    assert layout(32, "cuda") == torch.contiguous_format
    mlp = build_model("mlp", {"depth": 1, "width": 8}, (1, 28, 28), 10)
    assert memory_format(mlp, torch.device("cpu")) == torch.contiguous_format


def test_bf16_on_a_cpu_without_bf16_units_is_said_to_be_slow(monkeypatch) -> None:
    from types import SimpleNamespace

    from rich.console import Console

    from minarch.execute import study
    from minarch.train import precision

    cpu = torch.device("cpu")
    for has_units in (True, False):
        monkeypatch.setattr(precision, "cpu_has_bf16_units", lambda has=has_units: has)
        assert precision.slow_precision("fp32", cpu) is None
        assert (precision.slow_precision("bf16", cpu) is None) is has_units
    assert precision.slow_precision("bf16", torch.device("cuda")) is None
    console = Console(record=True, width=200)
    executor = SimpleNamespace(workspace=SimpleNamespace(device="cpu"))
    study._note_slow_precision({"fp32", "bf16"}, executor, console)
    assert "no bf16 matrix units" in console.export_text()
    console = Console(record=True, width=200)
    study._note_slow_precision({"fp32"}, executor, console)
    assert console.export_text() == ""


def test_deterministic_request_is_kept_with_the_run() -> None:
    from minarch.execute.trainer import environment
    from minarch.execute.workspace import Workspace

    workspace = Workspace("sqlite://", ".", ".", "cpu", 1, deterministic=True)
    assert environment(torch.device("cpu"), workspace)["deterministic"] is True
    (result,) = train(member(), deterministic=True)
    (again,) = train(member())
    assert curve(result) == curve(again)  # a CPU's kernels are deterministic already
