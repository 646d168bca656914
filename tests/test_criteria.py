"""Structured-pruning criteria (prune/criteria/): every registered one, on every family."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from minarch.errors import SpecError
from minarch.models import build_model, count_flops
from minarch.prune import CRITERIA, PruneError, prune_structured
from minarch.prune.attention import attention_layers, is_attention
from minarch.spec import parse_study
from tests.test_prune import CASES, _model

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("criterion", CRITERIA.names())
@pytest.mark.parametrize("family", sorted(CASES))
def test_every_criterion_hits_the_flop_target_or_says_why_not(family, criterion):
    """A criterion that cannot rank a model (bn-scale without batch norm) refuses in one line."""
    model, shape = _model(family), CASES[family][1]
    full = count_flops(model, shape)
    try:
        pruned = prune_structured(
            model, shape, flops_remaining=0.6, scope="global", criterion=criterion
        )
    except PruneError as error:
        assert f"the {criterion} criterion cannot rank" in str(error)
        assert "\n" not in str(error)
        assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
        return
    assert abs(count_flops(pruned, shape) - 0.6 * full) <= 0.01 * 0.6 * full
    assert pruned(torch.randn(2, *shape)).shape == (2, 10)


def _disagreeing_cnn() -> nn.Module:
    """One prunable layer of 8 filters on which L1, L2 and batch-norm scale disagree.

    Even filters spread over many small weights (L1 about 7.2, L2² 0.72), odd
    filters hold one large weight (L1 about 2, L2² 4); the batch norm scales
    filters 0-3 up. A small offset per filter keeps every filter distinct.
    """
    model = build_model("cnn", {"depth": 2, "channels": 8}, (1, 8, 8), 10)
    conv, norm = model.features[4], model.features[5]
    offset = 1e-3 * torch.arange(8.0)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0::2] = (0.1 + offset[0::2]).view(4, 1, 1, 1)
        conv.weight[1::2, 0, 0, 0] = 2.0 + offset[1::2]
        norm.weight.copy_(torch.tensor([1.0] * 4 + [0.1] * 4))
    return model


def _kept_filters(original: nn.Module, pruned: nn.Module) -> set[int]:
    rows, kept = original.features[4].weight, pruned.features[4].weight
    return {i for i in range(len(rows)) for row in kept if torch.equal(row, rows[i])}


@pytest.mark.parametrize(
    ("criterion", "kept"),
    [("l1", {0, 2, 4, 6}), ("l2", {1, 3, 5, 7}), ("bn-scale", {0, 1, 2, 3})],
)
def test_criteria_rank_differently_where_they_disagree(criterion, kept):
    model, shape = _disagreeing_cnn(), (1, 8, 8)
    # Only half of the 8 filters going lands within 1 % of 67 % of the FLOPs.
    pruned = prune_structured(
        model, shape, flops_remaining=0.67, scope="global", criterion=criterion
    )
    assert _kept_filters(model, pruned) == kept


def test_bn_scale_refuses_models_without_batch_norm_and_unknown_criteria_list_valid_ones():
    with pytest.raises(PruneError, match=r"the bn-scale criterion cannot rank the channels of"):
        prune_structured(_model("mlp"), CASES["mlp"][1], flops_remaining=0.5, scope="global",
                         criterion="bn-scale")  # fmt: skip
    with pytest.raises(PruneError, match="bn-scale criterion cannot rank the attention heads"):
        prune_structured(_model("vit"), CASES["vit"][1], flops_remaining=0.5, scope="global",
                         criterion="bn-scale")  # fmt: skip
    with pytest.raises(PruneError, match="unknown structured pruning criterion 'l3'; valid: bn-s"):
        prune_structured(_model("mlp"), CASES["mlp"][1], flops_remaining=0.5, scope="global",
                         criterion="l3")  # fmt: skip


def test_a_study_selects_its_criterion():
    base = """
name: criteria
datasets: [digits]
models: [{family: cnn, channels: 8}]
prune: {structured: {scope: [global], flops_remaining: [0.5]CRITERION}}
"""
    assert parse_study(base.replace("CRITERION", "")).prune.structured.criterion == "l1"
    chosen = parse_study(base.replace("CRITERION", ", criterion: bn-scale"))
    assert chosen.prune.structured.criterion == "bn-scale"
    with pytest.raises(SpecError, match=r"prune\.structured\.criterion") as info:
        parse_study(base.replace("CRITERION", ", criterion: random"))
    assert "\n" not in str(info.value)


def test_attention_blocks_are_found_by_their_layers_not_their_family():
    """prune/attention.py imports no model family: any block with heads, qkv and proj counts."""
    source = (Path(__file__).parents[1] / "src/minarch/prune/attention.py").read_text()
    assert "minarch.models" not in source

    class Lookalike(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.heads, self.qkv, self.proj = 2, nn.Linear(8, 24), nn.Linear(8, 8)

    vit = _model("vit")
    assert attention_layers(vit) == [block.attn.qkv for block in vit.blocks]
    assert is_attention(Lookalike()) and not is_attention(nn.Linear(8, 24))
