"""Simulated quantization (minarch.quant): error bounds, BN folding, casts, errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from minarch.errors import MinarchError
from minarch.models import build_model
from minarch.quant import (
    QuantError,
    QuantScheme,
    cast,
    fake_quantize,
    fold_batchnorm,
    quantize,
    quantize_weights,
    scale_of,
)

BITS = [2, 3, 4, 6, 8, 16]
# Families with BatchNorm, small configs, and an input shape each.
FOLDABLE = {
    "cnn": ({"depth": 3, "channels": 6}, (3, 16, 16)),
    "resnet_cifar": ({"depth": 20, "width_multiplier": 0.5}, (3, 16, 16)),
    "mobilenetv2_cifar": ({"width_multiplier": 0.25}, (3, 16, 16)),
}


def _weights(seed: int = 0) -> torch.Tensor:
    """Conv-shaped weights whose channel ranges differ by orders of magnitude."""
    generator = torch.Generator().manual_seed(seed)
    spread = torch.logspace(-3, 1, 8).reshape(8, 1, 1, 1)
    return torch.randn(8, 4, 3, 3, generator=generator) * spread


def _build(family: str) -> nn.Module:
    config, shape = FOLDABLE[family]
    model = build_model(family, config, shape, 10, generator=torch.Generator().manual_seed(0))
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=generator))
            module.running_var.copy_(torch.rand(n, generator=generator) * 2 + 0.1)
            module.weight.data.copy_(torch.randn(n, generator=generator))
            module.bias.data.copy_(torch.randn(n, generator=generator))
    return model.eval()


@pytest.mark.parametrize("granularity", ["channel", "tensor"])
@pytest.mark.parametrize("bits", BITS)
def test_error_at_most_half_a_step(bits, granularity):
    weight = _weights()
    scale = scale_of(weight, bits, granularity)
    scale = scale.reshape(-1, 1, 1, 1) if granularity == "channel" else scale
    error = (weight - fake_quantize(weight, bits, granularity)).abs()
    # Half a step, plus float32 rounding of w / scale (visible at 16 bits).
    rounding = 4 * torch.finfo(torch.float32).eps * weight.abs()
    assert torch.all(error <= scale / 2 + rounding)
    levels = (fake_quantize(weight, bits, granularity) / scale).round().abs()
    assert levels.max() <= 2 ** (bits - 1) - 1


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_per_channel_beats_per_tensor_on_uneven_channels(bits):
    weight = _weights()
    channel = (weight - fake_quantize(weight, bits, "channel")).abs().flatten(1).amax(1)
    tensor = (weight - fake_quantize(weight, bits, "tensor")).abs().flatten(1).amax(1)
    assert torch.all(channel <= tensor + 1e-7)
    assert channel.sum() < tensor.sum()


def test_sixteen_bits_nearly_lossless_two_bits_coarse():
    weight = _weights()
    fine = fake_quantize(weight, 16, "channel")
    assert torch.allclose(fine, weight, rtol=0, atol=float(weight.abs().max()) * 1e-4)
    coarse = fake_quantize(weight, 2, "channel")
    for channel in coarse:
        assert channel.abs().unique().numel() <= 3


def test_quantize_weights_touches_every_layer_and_not_the_original():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4, 2))
    before = [p.clone() for p in model.parameters()]
    quantized = quantize_weights(model, 2, granularity="tensor")
    for original, kept in zip(model.parameters(), before, strict=True):
        assert torch.equal(original, kept)
    for module in (quantized[0], quantized[2]):
        assert module.weight.abs().unique().numel() <= 2


@pytest.mark.parametrize("family", sorted(FOLDABLE))
def test_folding_keeps_eval_outputs(family):
    model = _build(family)
    x = torch.randn(4, *FOLDABLE[family][1], generator=torch.Generator().manual_seed(2))
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in folded.modules())
    with torch.no_grad():
        expected, actual = model(x), folded(x)
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-4)


def test_unfoldable_batchnorm_is_an_error():
    class Loose(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.norm = nn.BatchNorm2d(4)

        def forward(self, x):
            return self.norm(self.conv(x))

    with pytest.raises(QuantError, match="norm"):
        fold_batchnorm(Loose())
    with pytest.raises(QuantError, match="0"):
        fold_batchnorm(nn.Sequential(nn.BatchNorm2d(3), nn.Conv2d(3, 4, 3)))


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_casts_run_and_round(dtype):
    model = _build("cnn")
    x = torch.randn(2, 3, 16, 16)
    rounded = quantize(model, QuantScheme(dtype))
    target = {"fp16": torch.float16, "bf16": torch.bfloat16}[dtype]
    for parameter in rounded.parameters():
        assert parameter.dtype == torch.float32
        assert torch.equal(parameter, parameter.to(target).float())
    with torch.no_grad():
        torch.testing.assert_close(rounded(x), fold_batchnorm(model)(x), rtol=0.1, atol=0.1)
    with pytest.raises(QuantError, match="fp8"):
        cast(model, "fp8")


@pytest.mark.parametrize("family", sorted(FOLDABLE))
def test_quantize_scheme_end_to_end(family):
    model = _build(family)
    x = torch.randn(2, *FOLDABLE[family][1])
    with torch.no_grad():
        reference = model(x)
        eight = quantize(model, QuantScheme(8))(x)
        two = quantize(model, QuantScheme(2, granularity="tensor"))(x)
    assert (eight - reference).abs().mean() < (two - reference).abs().mean()
    assert QuantScheme(8).label == "int8"
    assert QuantScheme(4, granularity="tensor").label == "int4-tensor"


@pytest.mark.parametrize("bits", [1, 17, 0, 8.0, "8", True, "int8"])
def test_unsupported_bit_widths_are_clear_errors(bits):
    with pytest.raises(QuantError, match=r"2 to 16") as caught:
        QuantScheme(bits)
    assert repr(bits) in str(caught.value)
    assert isinstance(caught.value, MinarchError)
    with pytest.raises(QuantError, match=r"2 to 16"):
        quantize_weights(nn.Linear(2, 2), bits)


def test_unknown_granularity_is_an_error():
    with pytest.raises(QuantError, match="'row'"):
        QuantScheme(8, granularity="row")
