"""Structured and unstructured pruning, and the pruned-model file format."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from minarch.models import build_model, count_flops, count_parameters
from minarch.prune import (
    PruneError,
    architecture,
    load_pruned,
    prune_structured,
    prune_unstructured,
    save_pruned,
    sparsity,
)

CASES = {
    "mlp": ({"depth": 2, "width": 64}, (1, 28, 28)),
    "cnn": ({"depth": 3, "channels": 64, "pooling": "none"}, (3, 8, 8)),
    "resnet_cifar": ({"depth": 8}, (3, 16, 16)),
    "mobilenetv2_cifar": ({"width_multiplier": 0.25}, (3, 16, 16)),
}


def _model(family: str) -> nn.Module:
    config, shape = CASES[family]
    return build_model(family, config, shape, 10, generator=torch.Generator().manual_seed(0))


def _widths(model: nn.Module) -> list[int]:
    return [m.weight.shape[0] for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


@pytest.mark.parametrize("scope", ["uniform", "global"])
@pytest.mark.parametrize("family", sorted(CASES))
def test_structured_hits_flop_target_and_runs(family, scope):
    model = _model(family)
    shape = CASES[family][1]
    full_flops, full_params = count_flops(model, shape), count_parameters(model)
    for target in (0.8, 0.5):
        pruned = prune_structured(model, shape, flops_remaining=target, scope=scope)
        flops = count_flops(pruned, shape)
        assert abs(flops - target * full_flops) <= 0.01 * target * full_flops
        assert count_parameters(pruned) < full_params
        assert pruned(torch.randn(2, *shape)).shape == (2, 10)
        assert all(width > 0 for width in _widths(pruned))
    assert count_flops(model, shape) == full_flops, "the original must be left untouched"


def test_structured_keeps_first_conv_filters_and_classes():
    """The classifier keeps its outputs; its inputs follow the last stage's channels."""
    model = _model("resnet_cifar")
    pruned = prune_structured(model, CASES["resnet_cifar"][1], flops_remaining=0.5, scope="global")
    assert pruned.stem[0].weight.shape == model.stem[0].weight.shape
    assert pruned.classifier.out_features == 10


def test_uniform_and_global_choose_different_widths():
    model, shape = _model("cnn"), CASES["cnn"][1]
    uniform = prune_structured(model, shape, flops_remaining=0.5, scope="uniform")
    global_ = prune_structured(model, shape, flops_remaining=0.5, scope="global")
    assert _widths(uniform) != _widths(global_)


def test_global_pruning_never_empties_a_layer():
    """Unnormalised global ranking drives some groups to one channel, but never to none."""
    model, shape = _model("mobilenetv2_cifar"), CASES["mobilenetv2_cifar"][1]
    pruned = prune_structured(model, shape, flops_remaining=0.2, scope="global")
    assert min(_widths(pruned)) == 1
    assert pruned(torch.randn(2, *shape)).shape == (2, 10)


@pytest.mark.parametrize(
    ("family", "config", "shape", "target", "message"),
    [
        ("vit", {"dim": 16, "heads": 2}, (1, 8, 8), 0.5, "vit"),
        ("mlp", {"depth": 0, "width": 8}, (1, 8, 8), 0.5, "no prunable"),
        ("cnn", {"depth": 2, "channels": 8}, (3, 8, 8), 0.01, "unreachable"),
    ],
)
def test_structured_refuses_what_it_cannot_prune(family, config, shape, target, message):
    model = build_model(family, config, shape, 10)
    with pytest.raises(PruneError, match=message):
        prune_structured(model, shape, flops_remaining=target, scope="uniform")


@pytest.mark.parametrize("bad", [{"flops_remaining": 0.0}, {"scope": "layer"}])
def test_structured_rejects_bad_arguments(bad):
    arguments = {"flops_remaining": 0.5, "scope": "uniform"} | bad
    with pytest.raises(PruneError):
        prune_structured(_model("mlp"), CASES["mlp"][1], **arguments)


@pytest.mark.parametrize("target", [0.0, 0.3, 0.9, 1.0])
def test_unstructured_global_sparsity_is_exact(target):
    model = _model("resnet_cifar")
    pruned = prune_unstructured(model, sparsity=target, scope="global")
    weights = [m.weight for m in pruned.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    total = sum(w.numel() for w in weights)
    assert sum(int((w == 0).sum()) for w in weights) == round(target * total)
    assert sparsity(model) == 0.0, "the original must be left untouched"


def test_unstructured_layer_scope_prunes_every_layer_exactly():
    pruned = prune_unstructured(_model("cnn"), sparsity=0.7, scope="layer")
    for module in pruned.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            assert int((module.weight == 0).sum()) == round(0.7 * module.weight.numel())


def test_unstructured_global_removes_smallest_magnitudes():
    pruned = prune_unstructured(_model("mlp"), sparsity=0.5, scope="global")
    weights = torch.cat([p.weight.flatten() for p in pruned.modules() if isinstance(p, nn.Linear)])
    original = torch.cat(
        [p.weight.flatten() for p in _model("mlp").modules() if isinstance(p, nn.Linear)]
    )
    assert original[weights == 0].abs().max() <= original[weights != 0].abs().min()


@pytest.mark.parametrize("bad", [{"sparsity": 1.5}, {"scope": "uniform"}])
def test_unstructured_rejects_bad_arguments(bad):
    arguments = {"sparsity": 0.5, "scope": "global"} | bad
    with pytest.raises(PruneError):
        prune_unstructured(_model("mlp"), **arguments)


@pytest.mark.parametrize("family", sorted(CASES))
def test_save_load_round_trip(family, tmp_path):
    config, shape = CASES[family]
    pruned = prune_structured(_model(family), shape, flops_remaining=0.5, scope="global")
    pruned = prune_unstructured(pruned, sparsity=0.3, scope="layer").eval()
    path = tmp_path / "pruned.pt"
    save_pruned(pruned, path, family=family, config=config, input_shape=shape, num_classes=10)
    loaded = load_pruned(path)
    assert architecture(loaded) == architecture(pruned)
    x = torch.randn(3, *shape)
    with torch.no_grad():
        assert torch.equal(loaded(x), pruned(x))


def test_load_rejects_other_files(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(1)}, path)
    with pytest.raises(PruneError, match="format"):
        load_pruned(path)
