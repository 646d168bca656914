"""Quantization on real MNIST: precise formats keep accuracy, 2 bits lose it, int8 is its twin."""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn

from minarch.data import Dataset, load_dataset, split_dataset
from minarch.models import build_model
from minarch.quant import QuantScheme, convert_int8, quantize
from minarch.train import Member, Recipe, train_pack

pytestmark = [
    pytest.mark.slow,
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.real_data("mnist"),
]

SHAPE = (1, 28, 28)
# 5 % of MNIST trains each model in a few seconds on one core to about 90 %;
# a held-out 5 % (3,000 images) resolves 0.03 pp.
MODELS = {
    "mlp": ({"depth": 1, "width": 64}, 0.003),
    "cnn": ({"depth": 3, "channels": 16}, 0.01),
}
RECIPE = Recipe(optimizer="adamw", batch_size=32, epochs=2, schedule="cosine")


@pytest.fixture(scope="module")
def mnist() -> Dataset:
    data = load_dataset("mnist", os.environ["MINARCH_DATA_DIR"], download=False)
    return split_dataset(data, train_fraction=0.05, validation=0.05)


@pytest.fixture(scope="module", params=sorted(MODELS))
def trained(request, mnist) -> nn.Module:
    config, lr = MODELS[request.param]

    def make(generator: torch.Generator) -> nn.Module:
        return build_model(request.param, config, SHAPE, 10, generator=generator)

    member = Member(key=request.param, lr=lr, weight_decay=1e-4, seed=0)
    (result,) = train_pack(make_model=make, members=[member], recipe=RECIPE, data=mnist)
    model = make(torch.Generator())
    model.load_state_dict(result.state_dict)
    return model.eval()


def _accuracy(model: nn.Module, data: Dataset) -> float:
    """Top-1 validation accuracy in percent."""
    with torch.no_grad():
        predictions = model(data.normalize(data.val_x)).argmax(1)
    return 100 * float((predictions == data.val_y).float().mean())


def test_precise_formats_keep_accuracy_and_two_bits_lose_it(trained, mnist):
    base = _accuracy(trained, mnist)
    assert base > 80, "the model must have learned for the comparison to mean anything"
    for scheme in (QuantScheme(16), QuantScheme("fp16"), QuantScheme(8)):
        assert abs(_accuracy(quantize(trained, scheme), mnist) - base) <= 0.3, scheme.label
    two_bits = _accuracy(quantize(trained, QuantScheme(2, granularity="tensor")), mnist)
    assert base - two_bits > 5


def test_real_int8_agrees_with_its_simulated_twin(trained, mnist):
    pytest.importorskip("torchao")
    calibration = mnist.normalize(mnist.train_x[:512])
    real = convert_int8(trained, SHAPE, calibration)
    twin = quantize(trained, QuantScheme(8, activations=8), calibration)
    base, simulated = _accuracy(trained, mnist), _accuracy(twin, mnist)
    assert abs(_accuracy(real, mnist) - simulated) <= 0.5
    assert abs(simulated - base) <= 1.0
