"""Unstructured magnitude pruning: zero the smallest weights, keep the model dense.

Sparsity is exact: the k = round(s·n) smallest-magnitude weights are zeroed,
ties broken by position, so repeated runs zero the same weights.
"""

from __future__ import annotations

import copy
from typing import Literal

import torch
from torch import nn

from minarch.errors import PruneError
from minarch.prune.registry import PRUNERS, Pruner
from minarch.spec.settings import UnstructuredPrune

Scope = Literal["global", "layer"]
LAYERS = (nn.Linear, nn.modules.conv._ConvNd)


def prunable_layers(model: nn.Module) -> list[nn.Module]:
    """Every Linear and Conv layer, in module order: the ones pruning acts on."""
    return [module for module in model.modules() if isinstance(module, LAYERS)]


def prunable_weights(model: nn.Module) -> list[nn.Parameter]:
    """Weights of every Linear and Conv layer: the ones magnitude pruning acts on."""
    return [layer.weight for layer in prunable_layers(model)]


def prune_unstructured(model: nn.Module, *, sparsity: float, scope: Scope) -> nn.Module:
    """A copy with exactly ``sparsity`` of its Linear/Conv weights zeroed.

    ``global`` uses one magnitude ranking over all those weights; ``layer``
    prunes each layer to ``sparsity`` on its own.
    """
    check_scope(scope)
    if not 0 <= sparsity <= 1:
        raise PruneError(f"sparsity must be in [0, 1], got {sparsity}")
    pruned = copy.deepcopy(model)
    weights = prunable_weights(pruned)
    if not weights:
        raise PruneError(f"{type(model).__name__} has no Linear or Conv weights to prune")
    with torch.no_grad():
        for share in [weights] if scope == "global" else [[w] for w in weights]:
            zero_smallest(share, round(sparsity * sum(w.numel() for w in share)))
    return pruned


def check_scope(scope: str) -> None:
    if scope not in ("global", "layer"):
        raise PruneError(f"unstructured pruning scope must be 'global' or 'layer', got {scope!r}")


def zero_smallest(weights: list[torch.Tensor], count: int) -> None:
    """Zero the ``count`` smallest magnitudes among ``weights`` taken together, in place.

    Zeros rank first, so asking for the zeros already there plus k more prunes
    the k smallest of the weights that remain.
    """
    magnitudes = torch.cat([w.detach().abs().flatten() for w in weights])
    order = torch.argsort(magnitudes, stable=True)
    keep = torch.ones_like(magnitudes, dtype=torch.bool)
    keep[order[:count]] = False
    offset = 0
    for weight in weights:
        weight.mul_(keep[offset : offset + weight.numel()].view_as(weight))
        offset += weight.numel()


def sparsity(model: nn.Module) -> float:
    """Fraction of zero entries among the Linear/Conv weights."""
    weights = prunable_weights(model)
    zeros = sum(int((w == 0).sum()) for w in weights)
    return zeros / sum(w.numel() for w in weights)


def _apply(model: nn.Module, setting: UnstructuredPrune, input_shape: tuple[int, ...]) -> nn.Module:
    return prune_unstructured(model, sparsity=setting.sparsity, scope=setting.scope)


PRUNERS.register(UnstructuredPrune.pruner, Pruner(_apply, resizes=False))
