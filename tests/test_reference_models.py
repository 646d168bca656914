"""Reference models: strided, flatten-head and growing CNNs; a width-free depth-0 MLP."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

import minarch
from minarch.errors import SpecError
from minarch.models import build_model, count_flops, count_parameters, describe
from minarch.prune import prune_structured
from minarch.spec import expand, parse_study

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[1]

MNIST1D_CNN = {
    "depth": 3,
    "channels": 25,
    "stride": 2,
    "pooling": "none",
    "head": "flatten",
    "batch_norm": False,
}


def runs(*models: dict) -> list:
    raw = {"name": "s", "datasets": ["digits"], "models": list(models), "seeds": 1}
    return expand(parse_study(yaml.safe_dump(raw), "s.yaml"))


def test_configs_written_before_these_options_keep_their_run_ids():
    """Ids computed by the code before stride, pool_every, head, growth and width-free depth 0."""
    pinned = runs(
        {"family": "mlp", "depth": [1, 2], "width": 16},
        {"family": "cnn", "depth": 2, "channels": 8},
        {"family": "cnn", "depth": 3, "channels": 4, "kernel": 5, "pooling": "avg",
         "batch_norm": False},
    )  # fmt: skip
    assert [r.id for r in pinned] == [
        "d3e35b6aea457c87",
        "935f503595612117",
        "6bdf383c837e7a5a",
        "9381a89d96575d4f",
    ]


def test_the_mnist1d_reference_cnn_strides_and_flattens():
    """Three stride-2 convs take 40 samples to 5; 25 x 5 features feed the classifier."""
    model = build_model("cnn", MNIST1D_CNN, (1, 40), 10)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv1d)]
    assert [c.stride for c in convs] == [(2,)] * 3
    assert model.classifier.in_features == 125
    assert count_parameters(model) == 5_160  # the published model (kernel 5 first): 5,210
    assert model(torch.randn(2, 1, 40)).shape == (2, 10)
    assert describe("cnn", MNIST1D_CNN) == "cnn d3 c25 s2 pool-none flatten no-bn"


def test_channels_grow_by_a_factor_and_pooling_can_skip_blocks():
    config = {"depth": 4, "channels": 4, "growth": 2, "pool_every": 2}
    model = build_model("cnn", config, (1, 16, 16), 10)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [4, 8, 16, 32]
    assert sum(isinstance(m, nn.MaxPool2d) for m in model.modules()) == 2
    assert describe("cnn", config) == "cnn d4 c4 x2 pool-every-2"


def test_a_flatten_head_cnn_prunes_structurally():
    """Seed 15's global order steps over 60 % between two units (the search must wait,
    then put a unit back)."""
    config = {**MNIST1D_CNN, "channels": 16}
    model = build_model("cnn", config, (1, 40), 10, generator=torch.Generator().manual_seed(15))
    pruned = prune_structured(model, (1, 40), flops_remaining=0.6, scope="global")
    assert count_flops(pruned, (1, 40)) < count_flops(model, (1, 40))
    assert pruned(torch.randn(2, 1, 40)).shape == (2, 10)


def test_a_depth0_mlp_needs_no_width_and_any_width_is_the_same_architecture():
    logistic = runs({"family": "mlp", "depth": 0}, {"family": "mlp", "depth": 0, "width": [1, 5]})
    assert len(logistic) == 1
    assert describe("mlp", {"depth": 0, "width": 5}) == "mlp d0"
    model = build_model("mlp", {"depth": 0}, (1, 8, 8), 10)
    assert count_parameters(model) == 64 * 10 + 10


def test_an_mlp_with_hidden_layers_still_needs_a_width():
    with pytest.raises(SpecError, match=r"models\[0\]\.width: .*required when depth > 0"):
        runs({"family": "mlp", "depth": 2})


def test_the_mnist1d_baselines_study_plans_the_published_models():
    plan = minarch.plan("mnist1d-baselines")
    sizes = {run.label: run.params for run in plan.runs}
    assert sizes == {
        "mlp d0": 410,
        "mlp d2 w100": 15_210,
        "cnn d3 c25 s2 pool-none flatten no-bn": 5_160,
    }
    assert len(plan.runs) == 9


def test_the_compression_ladder_covers_the_ladder_depths_and_both_compressions():
    study = minarch.load_study(str(ROOT / "studies/compression-ladder-cpu.yaml"))
    assert [d.name for d in study.dataset_specs()] == [
        "digits",
        "mnist1d",
        "fashion-mnist",
        "cifar10-jpeg",
    ]
    depths = {entry["family"]: entry["depth"] for entry in study.models}
    assert depths == {"mlp": [1, 2, 3], "cnn": [2, 3]}
    assert study.prune.unstructured is not None and study.prune.pipelines == ("oneshot",)
    assert study.quantize is not None and study.seed_count() >= 3
