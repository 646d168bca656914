"""Structured and unstructured pruning, masks and IMP, and the pruned-model file format."""

from __future__ import annotations

import copy
import itertools
import random
import re

import pytest
import torch
from torch import nn

from minarch.models import build_model, count_flops, count_parameters, example, family_names
from minarch.models.vit import Attention
from minarch.prune import (
    PruneError,
    apply_masks_now,
    architecture,
    imp_step,
    is_masked,
    keep_pruned,
    layer_widths,
    load_pruned,
    prunable_weights,
    prune_structured,
    prune_unstructured,
    save_pruned,
    sparsity,
)
from minarch.prune.structured import _search
from minarch.train import Member, Recipe, train_pack
from tests.synthetic import class_patterns

pytestmark = pytest.mark.usefixtures("one_thread")

# Models the tests below are written against; every family is covered through its
# registered example (the tests parametrised over ``family_names()``).
CASES = {
    "mlp": ({"depth": 2, "width": 64}, (1, 28, 28)),
    "cnn": ({"depth": 3, "channels": 64, "pooling": "none"}, (3, 8, 8)),
    "resnet_cifar": ({"depth": 8}, (3, 16, 16)),
    "mobilenetv2_cifar": ({"width_multiplier": 0.25}, (3, 16, 16)),
    "vit": ({"dim": 32, "heads": 4}, (1, 8, 8)),
}


def _model(family: str) -> nn.Module:
    config, shape = CASES[family]
    return build_model(family, config, shape, 10, generator=torch.Generator().manual_seed(0))


def _widths(model: nn.Module) -> list[int]:
    return list(layer_widths(model).values())


def _example(family: str) -> nn.Module:
    config, shape = example(family).config, example(family).input_shape
    return build_model(family, config, shape, 10, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("scope", ["uniform", "global"])
@pytest.mark.parametrize("family", family_names())
def test_structured_hits_flop_target_and_runs(family, scope):
    model = _example(family)
    shape = example(family).input_shape
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
        ("mlp", {"depth": 0, "width": 8}, (1, 8, 8), 0.5, "no prunable"),
        ("cnn", {"depth": 2, "channels": 8}, (3, 8, 8), 0.01, "unreachable"),
        ("mlp", {"depth": 1, "width": 2}, (1, 8, 8), 0.7, "nearest reachable is 50.0%"),
    ],
)
def test_structured_refuses_what_it_cannot_prune(family, config, shape, target, message):
    model = build_model(family, config, shape, 10)
    with pytest.raises(PruneError, match=message):
        prune_structured(model, shape, flops_remaining=target, scope="uniform")


@pytest.mark.parametrize(
    "bad", [{"flops_remaining": 0.0}, {"scope": "layer"}, {"residual": "drop"}]
)
def test_structured_rejects_bad_arguments(bad):
    arguments = {"flops_remaining": 0.5, "scope": "uniform"} | bad
    with pytest.raises(PruneError):
        prune_structured(_model("mlp"), CASES["mlp"][1], **arguments)


def test_layer_widths_lists_every_layer_in_order():
    model = _model("resnet_cifar")
    widths = layer_widths(model)
    layers = [n for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert list(widths) == layers
    assert widths["stem.0"] == 16 and widths["classifier"] == 10
    pruned = prune_structured(model, CASES["resnet_cifar"][1], flops_remaining=0.5, scope="uniform")
    assert layer_widths(pruned)["stages.0.0.conv1.0"] < 16


def _residual_widths(model: nn.Module) -> list[int]:
    """Channel counts of the residual streams: every block's output, where blocks add."""
    if hasattr(model, "classifier") and hasattr(model, "stages"):  # CIFAR ResNet
        return [block.conv2[0].out_channels for stage in model.stages for block in stage]
    return [b.layers[-1][0].out_channels for b in model.features if getattr(b, "residual", False)]


@pytest.mark.parametrize(
    ("family", "config"),
    [
        ("resnet_cifar", {"depth": 20, "shortcut": "B"}),
        ("mobilenetv2_cifar", {"width_multiplier": 0.25}),
    ],
)
@pytest.mark.parametrize("scope", ["uniform", "global"])
def test_residual_keep_prunes_only_inside_blocks(family, config, scope):
    shape = (3, 16, 16)
    model = build_model(family, config, shape, 10, generator=torch.Generator().manual_seed(0))
    kept = prune_structured(model, shape, flops_remaining=0.6, scope=scope, residual="keep")
    assert _residual_widths(kept) == _residual_widths(model)
    assert count_flops(kept, shape) == pytest.approx(0.6 * count_flops(model, shape), rel=0.01)
    assert kept(torch.randn(2, *shape)).shape == (2, 10)
    if scope == "uniform":  # global L1 happens to spare the residual streams here
        pruned = prune_structured(model, shape, flops_remaining=0.6, scope=scope)
        assert _residual_widths(pruned) != _residual_widths(model)


@pytest.mark.parametrize("scope", ["uniform", "global"])
def test_option_a_shortcuts_keep_every_residual_stream(scope):
    """Zero-padding shortcuts tie every stream to the first convolution, which is never
    pruned: ``residual="prune"`` prunes inside the blocks only, exactly as ``"keep"`` does."""
    shape = (3, 16, 16)
    model = build_model("resnet_cifar", {"depth": 20}, shape, 10, generator=torch.Generator())
    kept = prune_structured(model, shape, flops_remaining=0.6, scope=scope, residual="keep")
    pruned = prune_structured(model, shape, flops_remaining=0.6, scope=scope, residual="prune")
    assert architecture(pruned) == architecture(kept)
    assert _residual_widths(pruned) == _residual_widths(kept) == _residual_widths(model)
    for net in (kept, pruned):
        assert count_flops(net, shape) == pytest.approx(0.6 * count_flops(model, shape), rel=0.01)
        assert count_parameters(net) < count_parameters(model)
        assert net(torch.randn(2, *shape)).shape == (2, 10)


def _heads(model: nn.Module) -> list[int]:
    return [m.heads for m in model.modules() if isinstance(m, Attention)]


def test_vit_loses_whole_heads_and_keeps_its_token_width():
    model, shape = _model("vit"), CASES["vit"][1]
    with torch.no_grad():  # head 2 is the weakest in every block
        for block in model.blocks:
            block.attn.qkv.weight.view(3, 4, 8, 32)[:, 2] *= 1e-3
    pruned = prune_structured(model, shape, flops_remaining=0.7, scope="uniform", residual="keep")
    assert pruned.patch_embed.out_features == 32 and pruned.pos_embed.shape[-1] == 32
    assert min(_heads(pruned)) > 0 and max(_heads(pruned)) < 4
    for block, original in zip(pruned.blocks, model.blocks, strict=True):
        attn, heads = block.attn, block.attn.heads
        assert attn.qkv.out_features == 3 * 8 * heads and attn.proj.in_features == 8 * heads
        rows, kept = (
            original.attn.qkv.weight.view(3, 4, 8, 32),
            attn.qkv.weight.view(3, heads, 8, 32),
        )
        sources = [h for j in range(heads) for h in range(4) if torch.equal(kept[:, j], rows[:, h])]
        assert 2 not in sources and sources == sorted(set(sources)) and len(sources) == heads
    assert pruned(torch.randn(2, *shape)).shape == (2, 10)


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


@pytest.mark.parametrize("family", family_names())
def test_save_load_round_trip(family, tmp_path):
    config, shape = example(family).config, example(family).input_shape
    pruned = prune_structured(_example(family), shape, flops_remaining=0.5, scope="global")
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


# masks and iterative magnitude pruning


def _sgd_steps(model: nn.Module, shape: tuple[int, ...], steps: int = 4) -> None:
    """A few SGD steps with momentum and weight decay on random data."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-2)
    generator = torch.Generator().manual_seed(1)
    model.train()
    for _ in range(steps):
        x = torch.randn(8, *shape, generator=generator)
        y = torch.randint(10, (8,), generator=generator)
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def _zeros(model: nn.Module) -> list[torch.Tensor]:
    return [w.detach() == 0 for w in prunable_weights(model)]


def test_masks_hold_sparsity_through_training():
    shape = CASES["resnet_cifar"][1]
    pruned = prune_unstructured(_model("resnet_cifar"), sparsity=0.6, scope="global")
    keys, zeros = list(pruned.state_dict()), _zeros(pruned)
    masked = keep_pruned(pruned)
    assert masked is pruned and is_masked(masked) and not is_masked(_model("resnet_cifar"))
    _sgd_steps(masked, shape)
    assert sparsity(masked) < 0.6, "a step moves pruned weights until the next forward"
    with torch.inference_mode():  # as cpu_latency_ms runs it
        masked.eval()(torch.randn(1, *shape))
    assert list(masked.state_dict()) == keys
    assert all(map(torch.equal, _zeros(masked), zeros))
    _sgd_steps(masked, shape)
    apply_masks_now(masked)
    assert all(map(torch.equal, _zeros(masked), zeros))
    assert sparsity(masked) == pytest.approx(0.6, abs=1e-4)


def test_masks_travel_with_copies_and_are_replaced_not_stacked():
    shape = CASES["mlp"][1]
    masked = keep_pruned(prune_unstructured(_model("mlp"), sparsity=0.5, scope="layer"))
    twin = copy.deepcopy(masked)
    _sgd_steps(twin, shape)
    apply_masks_now(twin)
    assert sparsity(twin) == sparsity(masked) == pytest.approx(0.5, abs=1e-3)
    keep_pruned(twin)
    assert all(len(m._forward_pre_hooks) == 1 for m in twin.modules() if isinstance(m, nn.Linear))


def test_trainer_returns_masked_weights():
    """The plain engine's end-of-epoch evaluation re-applies the masks before the state dict."""
    data = class_patterns((1, 6, 6), 3, 200, 60, noise=15)
    pruned = prune_unstructured(
        build_model("mlp", {"depth": 1, "width": 16}, (1, 6, 6), 3), sparsity=0.5, scope="global"
    )
    (result,) = train_pack(
        make_model=lambda generator: keep_pruned(copy.deepcopy(pruned)),
        members=[Member(key="m", lr=0.1, weight_decay=1e-3, seed=0)],
        recipe=Recipe(batch_size=32, epochs=2),
        data=data,
        engine="plain",
    )
    trained = copy.deepcopy(pruned)
    trained.load_state_dict(result.state_dict)
    assert all(map(torch.equal, _zeros(trained), _zeros(pruned)))
    assert not torch.equal(trained.layers[1].weight, pruned.layers[1].weight), "it trained"


def _training_round(model: nn.Module) -> nn.Module:
    _sgd_steps(model, CASES["mlp"][1])
    return model


@pytest.mark.parametrize("scope", ["global", "layer"])
def test_imp_rounds_compound_the_rate_exactly(scope):
    """Rate 1/2 on layers of 4096, 4096 and 640 weights: 1 − 2^−k exactly, per layer too."""
    initial = _model("mlp")
    rewind = copy.deepcopy(initial.state_dict())
    model, previous = copy.deepcopy(initial), _zeros(initial)
    for k in (1, 2, 3):
        trained = _training_round(model)
        model = imp_step(trained, rewind, rate=0.5, scope=scope)
        assert is_masked(model)
        assert sparsity(model) == 1 - 0.5**k
        if scope == "layer":
            assert all(
                float((w == 0).float().mean()) == 1 - 0.5**k for w in prunable_weights(model)
            )
        zeros = _zeros(model)
        assert all(bool((new | ~old).all()) for new, old in zip(zeros, previous, strict=True))
        for weight, start, zero in zip(
            prunable_weights(model), prunable_weights(initial), zeros, strict=True
        ):
            assert torch.equal(weight[~zero], start[~zero]), "survivors hold the rewind weights"
        previous = zeros


def test_imp_keeps_the_largest_trained_weights_and_rounds_each_round():
    initial = _model("mlp")
    rewind = copy.deepcopy(initial.state_dict())
    total = sum(w.numel() for w in prunable_weights(initial))
    model, remaining = copy.deepcopy(initial), total
    for k in (1, 2):
        trained = _training_round(model)
        apply_masks_now(trained)
        model = imp_step(trained, rewind, rate=0.2, scope="global")
        remaining -= round(0.2 * remaining)
        assert sum(int((w != 0).sum()) for w in prunable_weights(model)) == remaining
        assert abs(sparsity(model) - (1 - 0.8**k)) <= k / total
        trained_weights = torch.cat([w.detach().flatten() for w in prunable_weights(trained)])
        kept = torch.cat([(w != 0).flatten() for w in prunable_weights(model)])
        alive = trained_weights != 0
        assert trained_weights[alive & ~kept].abs().max() <= trained_weights[kept].abs().min()


def test_imp_rejects_a_foreign_rewind_state_and_bad_rates():
    model = _model("mlp")
    with pytest.raises(PruneError, match="rewind state"):
        imp_step(model, _model("cnn").state_dict(), rate=0.2, scope="global")
    for rate in (0.0, 1.5):
        with pytest.raises(PruneError, match="rate"):
            imp_step(model, model.state_dict(), rate=rate, scope="global")


def _coupled_layers(seed: int):
    """Two layers in which a unit of the first also shrinks the second, ranked at random.

    Returns the search's inputs (an order in which each group's units go weakest,
    i.e. lowest, first; a FLOPs function of the events removed; the full FLOPs)
    and the FLOPs of every pair of unit counts the groups could lose.
    """
    generator = random.Random(seed)
    widths = (generator.randint(3, 12), generator.randint(3, 12))
    inputs, outputs = generator.randint(8, 64), generator.randint(2, 10)

    def flops(removed: tuple[int, ...]) -> int:
        first, second = (width - gone for width, gone in zip(widths, removed, strict=True))
        return inputs * first + first * second + second * outputs

    def flops_after(events):
        return flops(tuple(sum(1 for g, _ in events if g == group) for group in (0, 1)))

    owners = [group for group, width in enumerate(widths) for _ in range(width - 1)]
    generator.shuffle(owners)
    order = [(group, owners[:index].count(group)) for index, group in enumerate(owners)]
    every = [flops(removed) for removed in itertools.product(*(range(w) for w in widths))]
    return order, flops_after, flops((0, 0)), every


def test_the_search_lands_in_the_band_wherever_the_ranking_lets_it():
    """Coarse coupled steps, 40 random rankings, five targets each.

    Each landing is within 1 % and removes every group's units in its order;
    each refusal names the nearest fraction. Of the targets some unit counts
    reach, the search finds 91 of 99 (following the ranking rules out the
    others' lone far-off points); freezing a group at its first overshoot,
    as it once did, found 67.
    """
    reached, reachable = 0, 0
    for seed in range(40):
        order, flops_after, full, every = _coupled_layers(seed)
        for target in (0.3, 0.45, 0.6, 0.75, 0.9):
            band = 0.01 * target * full
            reachable += any(abs(flops - target * full) <= band for flops in every)
            try:
                events = _search(order, flops_after, full, target * full, "test", 0.01)
            except PruneError as error:
                assert re.search(r"nearest reachable is \d+\.\d%|unreachable", str(error))
                continue
            reached += 1
            assert abs(flops_after(events) - target * full) <= band
            for group in (0, 1):
                units = [unit for g, unit in events if g == group]
                assert sorted(units) == list(range(len(units))), "a group's weakest go first"
    assert reachable == 99
    assert reached >= 90


def test_global_pruning_lands_where_the_order_crosses_the_band_between_units():
    """An MLP whose global order removes 11 units of one layer, then steps over 50 %."""
    shape = (1, 8, 8)
    model = build_model(
        "mlp", {"depth": 2, "width": 12}, shape, 10, generator=torch.Generator().manual_seed(0)
    )
    full = count_flops(model, shape)
    for target in (0.3, 0.5, 0.6, 0.75):
        pruned = prune_structured(model, shape, flops_remaining=target, scope="global")
        assert abs(count_flops(pruned, shape) - target * full) <= 0.01 * target * full


def test_a_wider_tolerance_reaches_targets_a_narrow_model_steps_over():
    model = build_model("cnn", {"depth": 3, "channels": 6}, (1, 28, 28), 10)
    full = count_flops(model, (1, 28, 28))
    with pytest.raises(PruneError, match=r"nearest reachable is 52\.9%.*widen the tolerance"):
        prune_structured(model, (1, 28, 28), flops_remaining=0.5, scope="global")
    pruned = prune_structured(
        model, (1, 28, 28), flops_remaining=0.5, scope="global", tolerance=0.1
    )
    assert abs(count_flops(pruned, (1, 28, 28)) / full - 0.5) <= 0.1 * 0.5
    with pytest.raises(PruneError, match="tolerance must be"):
        prune_structured(model, (1, 28, 28), flops_remaining=0.5, scope="global", tolerance=0)
