"""Every family's count by arithmetic equals what torch counts on the built model, exactly.

The planner records the arithmetic's parameters and FLOPs and bounds its
parameter tensors, and the memory check sizes its activations, without building
a model: so each of the four must be what the built model gives, over every
field's interesting values, odd sizes and the built-in datasets' input shapes.
"""

from __future__ import annotations

import itertools
import random
from types import SimpleNamespace

import pytest
import torch

from minarch.data import dataset_info, dataset_names
from minarch.errors import ModelError
from minarch.execute.planner import plan_study
from minarch.models import (
    Counts,
    analytic,
    analytic_counts,
    build,
    build_model,
    count_flops,
    count_parameters,
    example,
    families,
    family_names,
    registry,
)
from minarch.spec import parse_study
from minarch.train.engine import activations_per_sample

DIGITS, MNIST1D, MNIST, CIFAR = (1, 8, 8), (1, 40), (1, 28, 28), (3, 32, 32)
IMAGEFOLDER, WIDE = (3, 64, 64), (3, 24, 40)  # imagefolder's default; a non-square image
IMAGES = [DIGITS, MNIST, CIFAR, IMAGEFOLDER, WIDE]
SHAPES = [MNIST1D, *IMAGES]
# A family may have no count (the planner builds its models): checks run over those that do.
COUNTED = [name for name in family_names() if registry.family(name).count is not None]


def _spread(
    family: str, base: dict, choices: dict[str, list], classes: int, samples: int, seed: int
) -> list[tuple[str, dict, tuple[int, ...], int]]:
    """``base`` and each field at each of its values in turn, on every input shape; then
    random combinations of the values, each on a random shape."""
    configs = [base] + [base | {k: v} for k, values in choices.items() for v in values]
    cases = [(family, c, s, classes) for c, s in itertools.product(configs, SHAPES)]
    rng = random.Random(seed)
    for _ in range(samples):
        config = {k: rng.choice(values) for k, values in choices.items()}
        cases.append((family, base | config, rng.choice(SHAPES), classes))
    return cases


def _cases() -> list[tuple[str, dict, tuple[int, ...], int]]:
    """(family, config, input shape, classes) over every family's fields."""
    cases = _spread(
        "mlp", {"depth": 1, "width": 8},
        {"depth": [0, 1, 2, 3], "width": [1, 3, 17], "activation": ["relu", "tanh"]},
        classes=10, samples=8, seed=0,
    )  # fmt: skip
    cases += _spread(
        "cnn", {"depth": 2, "channels": 4},
        {
            "depth": [1, 3, 5], "channels": [1, 3], "kernel": [1, 5],
            "pooling": ["avg", "none"], "batch_norm": [False], "stride": [2, 3],
            "pool_every": [2, 3], "head": ["flatten"], "growth": [0.5, 1.7],
        },
        classes=7, samples=30, seed=1,
    )  # fmt: skip
    cases += _spread(
        "vit", {"dim": 8, "depth": 1, "patch_size": 4},
        {"dim": [4, 6, 12], "depth": [2, 3], "heads": [1, 2], "mlp_ratio": [0.3, 1.0, 2.5]},
        classes=3, samples=8, seed=2,
    )  # fmt: skip
    patches = [(1, DIGITS), (2, DIGITS), (8, DIGITS), (5, MNIST1D), (7, MNIST), (8, CIFAR)]
    cases += [("vit", {"dim": 6, "heads": 3, "patch_size": p}, s, 10) for p, s in patches]
    resnet_cifar = [
        {"depth": depth, "width_multiplier": width, "shortcut": shortcut}
        for depth, width, shortcut in itertools.product([8, 14], [0.1, 0.3], ["A", "B"])
    ] + [{"depth": 20}, {"depth": 20, "shortcut": "B"}]
    images = [DIGITS, CIFAR, WIDE]
    cases += [("resnet_cifar", c, s, 10) for c, s in itertools.product(resnet_cifar, images)]
    resnet50 = [{"width_multiplier": w} for w in (0.02, 0.0625, 0.1)]
    cases += [("resnet50", c, s, 10) for c, s in itertools.product(resnet50, [*IMAGES, (1, 5, 7)])]
    mobilenet = [{"width_multiplier": w} for w in (0.1, 0.35)]
    cases += [("mobilenetv2_cifar", c, s, 10) for c, s in itertools.product(mobilenet, IMAGES)]
    cases += [("mobilenetv2_cifar", {"width_multiplier": 0.75}, WIDE, 10)]
    cases += [("mobilenetv2_cifar", {"width_multiplier": 1.3}, DIGITS, 100)]  # last conv > 1280
    return cases


def built_counts(family, config, shape, classes) -> Counts:
    """What torch counts on the built model, as the planner and the memory check did."""
    model = build_model(family, config, shape, classes)
    inputs = SimpleNamespace(train_x=torch.empty((0, *shape)))
    return Counts(
        parameters=count_parameters(model),
        flops=count_flops(model, shape),
        tensors=len(list(model.parameters())),
        activations=activations_per_sample(model, inputs),
    )


CASES = _cases()


@pytest.mark.parametrize("family", COUNTED)
def test_the_count_of_the_example_equals_the_built_models(family):
    config, shape = example(family).config, example(family).input_shape
    assert analytic_counts(family, config, shape, 5) == built_counts(family, config, shape, 5)


@pytest.mark.slow
@pytest.mark.parametrize(("family", "config", "shape", "classes"), CASES, ids=str)
def test_the_count_equals_the_built_models(family, config, shape, classes):
    counted = analytic_counts(family, config, shape, classes)
    assert counted == built_counts(family, config, shape, classes)


def test_every_family_is_counted_over_every_built_in_input_shape():
    built_in = {"mlp", "cnn", "vit", "resnet_cifar", "resnet50", "mobilenetv2_cifar"}
    assert built_in <= set(COUNTED) == {family for family, *_ in CASES}
    infos = [dataset_info(name) for name in dataset_names()]
    assert {info.input_shape for info in infos} <= set(SHAPES)


@pytest.mark.parametrize("family", COUNTED)
def test_a_forgotten_bias_is_caught(family, monkeypatch):
    """The check can fail: every family's classifier is a linear layer with a bias."""

    linear = analytic.linear

    def without_bias(in_features: int, out_features: int, rows: int = 1) -> Counts:
        return linear(in_features, out_features, rows) + Counts(-out_features, 0, -1)

    for module in [analytic, getattr(families, family)]:
        if hasattr(module, "linear"):
            monkeypatch.setattr(module, "linear", without_bias)
    config, shape = example(family).config, example(family).input_shape
    counted = analytic_counts(family, config, shape, 5)
    built = built_counts(family, config, shape, 5)
    assert counted != built and counted.parameters < built.parameters


@pytest.mark.parametrize(
    ("family", "config", "shape"),
    [
        ("vit", {"dim": 8, "heads": 3}, DIGITS),
        ("vit", {"dim": 8, "patch_size": 3}, DIGITS),
        ("vit", {"dim": 8}, (1, 2, 4, 4)),
        ("cnn", {"channels": 2}, (5,)),
        ("resnet_cifar", {"depth": 9}, CIFAR),
        ("resnet_cifar", {"depth": 8}, MNIST1D),
        ("resnet50", {}, MNIST1D),
        ("mobilenetv2_cifar", {}, MNIST1D),
    ],
)
def test_the_count_refuses_what_the_builder_refuses(family, config, shape):
    with pytest.raises(ModelError) as built:
        build_model(family, config, shape, 10)
    with pytest.raises(ModelError) as counted:
        analytic_counts(family, config, shape, 10)
    assert str(counted.value) == str(built.value)


UNCOUNTED = """
name: uncounted
datasets: [digits, mnist1d]
models:
  - {family: mlp, depth: [0, 2], width: 5}
  - {family: uncounted_mlp, depth: [0, 2], width: 5}
training: {optimizer: sgd, lr: 0.1, epochs: 1, batch_size: 8}
seeds: 1
"""


def test_the_planner_builds_only_the_models_of_a_family_without_a_count(monkeypatch):
    """``mlp`` by arithmetic, the same model as a family without a count (a plugin's, say)
    built and counted by torch: the plan sizes both alike."""
    monkeypatch.setattr(registry, "_FAMILIES", dict(registry._FAMILIES))
    mlp = registry.family("mlp")
    registry.register("uncounted_mlp", mlp.config, mlp.build, mlp.describe, example=mlp.example)
    built = []

    def spy(family, *args):
        built.append(family)
        return build_model(family, *args)

    monkeypatch.setattr(build, "build_model", spy)
    plan = plan_study(parse_study(UNCOUNTED), UNCOUNTED)
    sizes = {}
    for run in plan.runs:  # the labels of mlp and uncounted_mlp are alike
        sizes.setdefault((run.config.dataset.name, run.label), set()).add((run.params, run.flops))
    assert built == ["uncounted_mlp"] * 4
    assert len(sizes) == 4 and all(len(both) == 1 for both in sizes.values())
