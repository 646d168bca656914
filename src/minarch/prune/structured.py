"""Structured L1 filter pruning (Li et al. 2017) to a target fraction of FLOPs remaining.

Torch-Pruning's dependency graph groups the channels that must go together
(residual additions, depthwise convolutions, batch norms) and removes them
physically, so the result is a smaller dense model. Each group is ranked by
the L1 norm of its root layer's filters (no normalisation across groups). How
many channels go is found by bisection, pruning a fresh copy on each try, until
the FLOPs are within 1 % of the target.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Literal

import torch
import torch_pruning as tp
from torch import nn

from minarch.errors import PruneError
from minarch.models import count_flops
from minarch.models.vit import ViT

Scope = Literal["uniform", "global"]

TOLERANCE = 0.01
_STEPS = 40
_LAYERS = (nn.Linear, nn.modules.conv._ConvNd)
_IMPORTANCE = tp.importance.MagnitudeImportance(p=1, normalizer=None, group_reduction="first")

# Channels to prune per group, given each group's importances and a search position.
Selector = Callable[[list[torch.Tensor], float], list[torch.Tensor]]


def prune_structured(
    model: nn.Module,
    input_shape: tuple[int, ...],
    *,
    flops_remaining: float,
    scope: Scope,
) -> nn.Module:
    """A pruned copy whose FLOPs are within 1 % of ``flops_remaining`` × the original's.

    ``uniform`` removes the same fraction of channels in every prunable group
    (up to rounding, dithered across groups so the target can be met);
    ``global`` ranks all channels together. No group loses its last channel,
    and the first convolution and the classifier are never pruned.
    """
    if scope not in ("uniform", "global"):
        raise PruneError(f"structured pruning scope must be 'uniform' or 'global', got {scope!r}")
    if not 0 < flops_remaining <= 1:
        raise PruneError(f"flops_remaining must be in (0, 1], got {flops_remaining}")
    if isinstance(model, ViT):
        raise PruneError("vit: structured pruning not supported yet")
    input_shape = tuple(input_shape)
    if flops_remaining == 1:
        return copy.deepcopy(model)
    full = count_flops(model, input_shape)
    target = flops_remaining * full
    select = _uniform if scope == "uniform" else _global

    def attempt(position: float) -> tuple[nn.Module, int]:
        pruned = _prune_copy(model, input_shape, select, position)
        return pruned, count_flops(pruned, input_shape)

    smallest, flops = attempt(1.0)
    if flops > target * (1 + TOLERANCE):
        raise PruneError(
            f"structured {scope} pruning of {type(model).__name__} cannot go below "
            f"{flops / full:.1%} of the FLOPs; {flops_remaining:.1%} is unreachable"
        )
    low, high = 0.0, 1.0
    for _ in range(_STEPS):
        if abs(flops - target) <= TOLERANCE * target:
            return smallest
        position = (low + high) / 2
        smallest, flops = attempt(position)
        if flops > target:
            low = position
        else:
            high = position
    raise PruneError(
        f"structured {scope} pruning of {type(model).__name__} cannot reach "
        f"{flops_remaining:.1%} of the FLOPs within {TOLERANCE:.0%}; its channel steps "
        "are too coarse for this target"
    )


def _uniform(importances: list[torch.Tensor], position: float) -> list[torch.Tensor]:
    """The ``position`` fraction of each group's weakest channels, rounding dithered by group."""
    chosen = []
    for index, imp in enumerate(importances):
        phase = index / len(importances)
        count = min(len(imp) - 1, math.floor(position * len(imp) + phase))
        chosen.append(torch.argsort(imp, stable=True)[:count])
    return chosen


def _global(importances: list[torch.Tensor], position: float) -> list[torch.Tensor]:
    """The weakest ``position`` fraction of all channels ranked together, keeping one per group."""
    flat = torch.cat(importances)
    count = round(position * len(flat))
    pruned = torch.zeros(len(flat), dtype=torch.bool)
    pruned[torch.argsort(flat, stable=True)[:count]] = True
    chosen, offset = [], 0
    for imp in importances:
        mask = pruned[offset : offset + len(imp)].clone()
        offset += len(imp)
        if mask.all():
            mask[torch.argmax(imp)] = False
        chosen.append(mask.nonzero().view(-1))
    return chosen


def _prune_copy(
    model: nn.Module, input_shape: tuple[int, ...], select: Selector, position: float
) -> nn.Module:
    pruned = copy.deepcopy(model)
    training = pruned.training
    pruned.eval()
    example = torch.zeros((1, *input_shape), device=_device(pruned))
    try:
        graph = tp.DependencyGraph().build_dependency(pruned, example_inputs=example)
        groups = list(
            graph.get_all_groups(
                ignored_layers=_ignored_layers(pruned), root_module_types=list(_LAYERS)
            )
        )
        if not groups:
            raise PruneError(
                f"{type(model).__name__} has no prunable channels outside its first "
                "convolution and its classifier"
            )
        roots = [(group[0].dep.target.module, group[0].dep.handler) for group in groups]
        importances = [_IMPORTANCE(group).cpu() for group in groups]
        for (module, handler), indices in zip(roots, select(importances, position), strict=True):
            if len(indices):
                graph.get_pruning_group(module, handler, indices.tolist()).prune()
    except PruneError:
        raise
    except Exception as error:  # Torch-Pruning reports unsupported graphs in many ways.
        raise PruneError(
            f"structured pruning failed for {type(model).__name__}: {error}"
        ) from error
    pruned.train(training)
    _check_not_emptied(pruned)
    return pruned


def _ignored_layers(model: nn.Module) -> list[nn.Module]:
    """The classifier (the class count fixes it) and the first convolution (Li et al. 2017).

    An MLP's first layer is prunable: it holds most of an MLP's FLOPs.
    """
    layers = [m for m in model.modules() if isinstance(m, _LAYERS)]
    convs = [m for m in layers if isinstance(m, nn.modules.conv._ConvNd)]
    return layers[-1:] + convs[:1]


def _check_not_emptied(model: nn.Module) -> None:
    for name, module in model.named_modules():
        weight = getattr(module, "weight", None)
        if isinstance(weight, torch.Tensor) and weight.numel() == 0:
            raise PruneError(f"structured pruning emptied layer {name!r}")


def _device(model: nn.Module) -> torch.device:
    reference = next(model.parameters(), None)
    return reference.device if reference is not None else torch.device("cpu")
