"""Real MNIST: pruning trained models behaves as the pruning literature reports.

Magnitude pruning half of an MLP's weights costs almost nothing; pruning 99 %
destroys it. Structured pruning of a narrow CNN to half its FLOPs removes a
third of its channels and costs most of its accuracy until one epoch of
fine-tuning brings it back.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest
import torch
from torch import nn

from minarch.data import Dataset, load_dataset, split_dataset
from minarch.models import build_model, count_flops, count_parameters
from minarch.prune import prune_structured, prune_unstructured
from minarch.train import Member, Recipe, train_pack

pytestmark = [
    pytest.mark.slow,
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.real_data("mnist"),
]

SHAPE = (1, 28, 28)
RECIPE = Recipe(batch_size=128, epochs=2, schedule="cosine")


@pytest.fixture(scope="module")
def mnist() -> Dataset:
    """10 % of MNIST's training images (5,700) to train, a held-out 5 % (3,000) to score."""
    data = load_dataset("mnist", Path(os.environ["MINARCH_DATA_DIR"]), download=False)
    return split_dataset(data, train_fraction=0.1, validation=0.05, seed=0)


def _trained(family: str, config: dict, data: Dataset) -> nn.Module:
    def make_model(generator: torch.Generator) -> nn.Module:
        return build_model(family, config, SHAPE, 10, generator=generator)

    return _train(make_model, data, RECIPE, lr=0.1)


def _train(make_model, data: Dataset, recipe: Recipe, *, lr: float) -> nn.Module:
    member = Member(key="m", lr=lr, weight_decay=1e-4, seed=0)
    (result,) = train_pack(
        make_model=make_model, members=[member], recipe=recipe, data=data, engine="plain"
    )
    model = make_model(torch.Generator())
    model.load_state_dict(result.state_dict)
    return model.eval()


@torch.no_grad()
def _accuracy(model: nn.Module, data: Dataset) -> float:
    predictions = model.eval()(data.normalize(data.val_x)).argmax(dim=1)
    return (predictions == data.val_y).float().mean().item()


def test_mlp_survives_half_sparsity_and_collapses_at_99(mnist):
    model = _trained("mlp", {"depth": 2, "width": 256}, mnist)
    dense = _accuracy(model, mnist)
    assert dense > 0.85
    half = _accuracy(prune_unstructured(model, sparsity=0.5, scope="global"), mnist)
    assert half >= dense - 0.02
    assert _accuracy(prune_unstructured(model, sparsity=0.99, scope="global"), mnist) < 0.3


def test_cnn_pruned_to_half_its_flops_recovers_with_a_fine_tune(mnist):
    model = _trained("cnn", {"depth": 3, "channels": 16}, mnist)
    dense = _accuracy(model, mnist)
    assert dense > 0.8
    pruned = prune_structured(model, SHAPE, flops_remaining=0.5, scope="global")
    assert count_flops(pruned, SHAPE) < 0.51 * count_flops(model, SHAPE)
    assert count_parameters(pruned) < count_parameters(model)
    assert 0.1 < _accuracy(pruned, mnist) < dense  # chance is 0.1
    tune = RECIPE.model_copy(update={"epochs": 1, "schedule": "constant"})
    tuned = _train(lambda generator: copy.deepcopy(pruned), mnist, tune, lr=0.02)
    assert _accuracy(tuned, mnist) > 0.6
