"""Structured filter pruning to a target fraction of FLOPs remaining.

Torch-Pruning's dependency graph groups the channels that must go together
(residual additions, depthwise convolutions, batch norms) and removes them
physically, so the result is a smaller dense model. Each group is ranked by a
criterion from ``CRITERIA`` (by default the L1 norm of its root layer's
filters, Li et al. 2017; no normalisation across groups); a ViT's attention
heads are ranked and removed whole (``attention.py``).

The scope fixes the order in which units (channels, heads) go; how many go is
found by a bracketing search on that order, each try pruning a fresh copy.
Where removing one unit would jump over the 1 % band around the target (a
coarse unit: a head, a channel of a narrow layer), its group waits while
the others prune on, and resumes once their pruning has made its steps
smaller; so coarse models still reach most targets, and where they cannot,
the error names the nearest fraction reached.
"""

from __future__ import annotations

import copy
import functools
from fractions import Fraction
from typing import Literal

import torch
import torch_pruning as tp
from torch import nn

from minarch.errors import PruneError
from minarch.models import count_flops
from minarch.prune.attention import Group, attention_layers, head_groups
from minarch.prune.registry import CRITERIA, PRUNERS, Criterion, Pruner
from minarch.prune.unstructured import LAYERS, prunable_layers
from minarch.spec.settings import DEFAULT_CRITERION, DEFAULT_TOLERANCE, StructuredPrune

Scope = Literal["uniform", "global"]
Residual = Literal["prune", "keep"]

_ATTEMPTS = 200

# A unit's removal: (group index, unit index within the group).
Event = tuple[int, int]


def prune_structured(
    model: nn.Module,
    input_shape: tuple[int, ...],
    *,
    flops_remaining: float,
    scope: Scope,
    residual: Residual = "prune",
    tolerance: float = DEFAULT_TOLERANCE,
    criterion: str = DEFAULT_CRITERION,
) -> nn.Module:
    """A pruned copy whose FLOPs are within ``tolerance`` of ``flops_remaining`` × the original's.

    Narrow models move in coarse steps; a wider ``tolerance`` (default 1 %)
    lets them reach a target.

    ``uniform`` removes the same fraction of channels in every prunable group
    (up to rounding, dithered across groups so the target can be met);
    ``global`` ranks all channels together. No group loses its last channel,
    and the first convolution and the classifier are never pruned.
    ``residual="keep"`` leaves every channel tied to a residual addition (a
    stage's width, a ViT's token width) and prunes only inside blocks, as the
    thesis did; ``"prune"`` removes such channels together across the stage,
    except a stream tied to the first convolution: behind zero-padding (option
    A) shortcuts that is every stream, so there both settings prune alike.
    A ViT loses whole attention heads and MLP hidden units (and, with
    ``"prune"``, token width); its head width never changes. A group whose
    next unit would step over the band waits or trades (module docstring).
    ``criterion`` names how units are ranked (``CRITERIA``).
    """
    if scope not in ("uniform", "global"):
        raise PruneError(f"structured pruning scope must be 'uniform' or 'global', got {scope!r}")
    if residual not in ("prune", "keep"):
        raise PruneError(f"residual must be 'prune' or 'keep', got {residual!r}")
    if not 0 < flops_remaining <= 1:
        raise PruneError(f"flops_remaining must be in (0, 1], got {flops_remaining}")
    if not 0 < tolerance < 0.5:
        raise PruneError(f"tolerance must be in (0, 0.5), got {tolerance}")
    ranking = CRITERIA[criterion]
    if ranking.heads is None and attention_layers(model):
        name = type(model).__name__
        raise PruneError(f"the {criterion} criterion cannot rank the attention heads of {name}")
    input_shape = tuple(input_shape)
    if flops_remaining == 1:
        return copy.deepcopy(model)
    try:
        pruned = _prune(model, input_shape, flops_remaining, scope, residual, tolerance, ranking)
    except PruneError:
        raise
    except Exception as error:  # Torch-Pruning reports unsupported graphs in many ways.
        raise PruneError(
            f"structured pruning failed for {type(model).__name__}: {error}"
        ) from error
    _check_not_emptied(pruned)
    return pruned.train(model.training)


def _prune(
    model: nn.Module,
    input_shape: tuple[int, ...],
    flops_remaining: float,
    scope: Scope,
    residual: Residual,
    tolerance: float,
    criterion: Criterion,
) -> nn.Module:
    pruned = _workable_copy(model)
    groups = _groups(pruned, input_shape, residual, criterion)
    if not groups:
        kept = "first convolution and its classifier"
        if residual == "keep":
            kept = "first convolution, its classifier and its residual streams"
        raise PruneError(f"{type(model).__name__} has no prunable channels outside its {kept}")

    def flops_after(events: list[Event]) -> int:
        trial = _workable_copy(model)
        _remove(_groups(trial, input_shape, residual, criterion), events)
        return count_flops(trial, input_shape)

    order = _order([rank() for rank, _ in groups], scope)
    full = count_flops(model, input_shape)
    what = f"{scope} pruning of {type(model).__name__} (residual={residual!r})"
    _remove(groups, _search(order, flops_after, full, flops_remaining * full, what, tolerance))
    return pruned


def layer_widths(model: nn.Module) -> dict[str, int]:
    """Output channels or features of every Linear/Conv layer, in module order.

    The widths a structured pruning chose, for tabulating uniform against global.
    """
    return {
        name: module.out_channels
        if isinstance(module, nn.modules.conv._ConvNd)
        else module.out_features
        for name, module in model.named_modules()
        if isinstance(module, LAYERS)
    }


def _search(
    order: list[Event], flops_after, full: int, target: float, what: str, tolerance: float
) -> list[Event]:
    """The events to apply: units whose removal lands in the band around ``target``.

    Each group loses the first units it has in ``order`` (its weakest). A
    bracketing search on how many of ``order`` go. Where one unit alone jumps
    over the band, its group waits: its units move behind every other
    group's, and the search goes on (removing other units shrinks the layers
    a unit feeds, so its steps shrink too). Where every group left jumps
    over, the group with the largest step removes its next unit anyway while
    the other groups' units removed last come back (``_trade``). Where no
    trade lands in the band, the waiting group with the largest step among
    those that lost units puts back its last one and keeps the rest for good,
    and the others prune on from there.
    """
    tried = [full]

    def measure(events: list[Event]) -> int:
        tried.append(flops_after(events))
        return tried[-1]

    def within(flops: int) -> bool:
        return abs(flops - target) <= tolerance * target

    if within(full):
        return []
    floor = measure(order)
    if floor > target * (1 + tolerance):
        raise PruneError(
            f"structured {what} cannot go below {floor / full:.1%} of the FLOPs; "
            f"{target / full:.1%} is unreachable"
        )
    if within(floor):
        return order
    # Removing order[:low] leaves ``above`` FLOPs, over the band; order[:high] leaves
    # ``below``, under it. Interpolate between them, bisecting when that gains little.
    low, high, above, below, bisect = 0, len(order), full, floor, False
    steps: dict[int, int] = {}  # group → FLOPs its next unit removes, for groups waiting at ``low``
    while len(tried) < _ATTEMPTS:
        if high - low > 1:
            guess = low + round((high - low) * (above - target) / (above - below))
            middle = (low + high) // 2 if bisect else min(max(guess, low + 1), high - 1)
            flops = measure(order[:middle])
            if within(flops):
                return order[:middle]
            width = high - low
            if flops > target:
                low, above, steps = middle, flops, {}
            else:
                high, below = middle, flops
            bisect = high - low > width / 2
            continue
        group = order[low][0]
        if group not in steps:  # its next unit jumps over the band: it waits behind the others
            steps[group] = above - below
            order = order[:low] + _behind(order[low:], group)
            high, below = len(order), floor
            if order[low][0] in steps:  # so do all the groups left: no need to bracket again
                high, below = low + 1, above - steps[order[low][0]]
            continue
        # Every group left jumps over the band. The coarsest takes its next unit anyway
        # and the other groups' units removed last come back; or else the coarsest
        # waiting group that lost units puts back its last one, keeps the rest for
        # good, and the others prune on.
        coarsest = max(steps, key=steps.__getitem__)
        unit = next(event for event in order[low:] if event[0] == coarsest)
        traded = _trade(order[:low], unit, measure, within, target)
        if traded:
            return traded
        removed = {event[0] for event in order[:low]}
        capped = max(steps.keys() & removed, key=steps.__getitem__, default=None)
        if capped is None:
            break
        last = max(i for i in range(low) if order[i][0] == capped)
        order = order[:last] + [event for event in order[last + 1 :] if event[0] != capped]
        low, steps = low - 1, {}
        above, floor = measure(order[:low]), measure(order)
        if within(above):
            return order[:low]
        if within(floor):
            return order
        if floor > target:
            break
        high, below = len(order), floor
    nearest = min(tried, key=lambda f: abs(f - target))
    raise PruneError(
        f"structured {what} cannot reach {target / full:.1%} of the FLOPs within "
        f"{tolerance:.0%}: its channel or head steps are too coarse; the nearest reachable "
        f"is {nearest / full:.1%} (widen the tolerance, or prune a wider model)"
    )


def _trade(prefix: list[Event], unit: Event, measure, within, target: float) -> list[Event] | None:
    """``unit`` removed and the other groups' last k units of ``prefix`` put back, in the band.

    Removing all of ``prefix`` and ``unit`` lands under the band; each unit put
    back raises the FLOPs, so k is bisected. None where no k lands in it.
    """
    own = [event for event in prefix if event[0] == unit[0]] + [unit]
    others = [event for event in prefix if event[0] != unit[0]]
    if not others:
        return None
    flops = measure(own)
    if within(flops):
        return own
    if flops < target:
        return None
    under, over = 0, len(others)  # units put back: too few, enough to be over the band
    while over - under > 1:
        middle = (under + over) // 2
        events = others[: len(others) - middle] + own
        flops = measure(events)
        if within(flops):
            return events
        if flops < target:
            under = middle
        else:
            over = middle
    return None


def _behind(events: list[Event], group: int) -> list[Event]:
    """``events`` with ``group``'s moved behind every other group's, each keeping its order."""
    return [e for e in events if e[0] != group] + [e for e in events if e[0] == group]


def _order(importances: list[torch.Tensor], scope: Scope) -> list[Event]:
    """Every removable unit in the order the scope removes it; no group's strongest unit.

    ``global``: weakest first across all groups. ``uniform``: each group's
    units weakest first, interleaved so that the k-th unit of a group of n goes
    when the fraction pruned everywhere reaches (k − g/G)/n, the phase g/G
    (group g of G) dithering the rounding across groups.
    """
    importances = [imp.cpu() for imp in importances]
    if scope == "global":
        owners = [(g, u) for g, imp in enumerate(importances) for u in range(len(imp))]
        ranked, strongest = [], set()
        for index in reversed(torch.argsort(torch.cat(importances), stable=True).tolist()):
            group = owners[index][0]
            if group in strongest:
                ranked.append(owners[index])
            strongest.add(group)
        return ranked[::-1]
    count = len(importances)
    keyed = [
        (Fraction(k * count - g, count * len(imp)), g, unit)
        for g, imp in enumerate(importances)
        for k, unit in enumerate(torch.argsort(imp, stable=True).tolist()[:-1], start=1)
    ]
    return [(g, unit) for _, g, unit in sorted(keyed)]


def _remove(groups: list[Group], events: list[Event]) -> None:
    chosen: list[list[int]] = [[] for _ in groups]
    for group, unit in events:
        chosen[group].append(unit)
    for (_, remove), units in zip(groups, chosen, strict=True):
        if units:
            remove(units)


def _workable_copy(model: nn.Module) -> nn.Module:
    """A copy in eval mode (tracing must not touch batch-norm statistics) that may lose heads."""
    pruned = copy.deepcopy(model)
    return pruned.eval()


def _groups(
    model: nn.Module,
    input_shape: tuple[int, ...],
    residual: Residual,
    criterion: Criterion,
) -> list[Group]:
    """Torch-Pruning's channel groups, then a ViT's head groups, ranked by ``criterion``.

    Free parameters (a ViT's class token and position embeddings) are pruned
    along their last dimension, their channel one: Torch-Pruning's default.
    """
    example = torch.zeros((1, *input_shape), device=_device(model))
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=example, verbose=False)
    groups = []
    for group in graph.get_all_groups(
        ignored_layers=_ignored_layers(model), root_module_types=list(LAYERS)
    ):
        if residual == "keep" and _joins_residual(group):
            continue
        root = group[0].dep
        remove = functools.partial(_prune_group, graph, root.target.module, root.handler)
        groups.append((functools.partial(_channel_scores, criterion, group), remove))
    heads = head_groups(model, criterion.heads) if criterion.heads is not None else []
    return groups + heads


def _channel_scores(criterion: Criterion, group: tp.Group) -> torch.Tensor:
    scores = criterion.channels(group)
    if scores is None:
        layer = group[0].dep.target.name
        raise PruneError(f"the {criterion.name} criterion cannot rank the channels of {layer}")
    return scores


def _prune_group(graph: tp.DependencyGraph, module: nn.Module, handler, units: list[int]) -> None:
    graph.get_pruning_group(module, handler, units).prune()


def _joins_residual(group) -> bool:
    """Whether the group's channels meet a residual stream at an addition."""
    return any(
        isinstance(item.dep.target.module, tp.ops._ElementWiseOp)
        and item.dep.target.module._grad_fn.startswith("AddBackward")
        for item in group
    )


def _ignored_layers(model: nn.Module) -> list[nn.Module]:
    """The classifier (the class count fixes it) and the first convolution (Li et al. 2017).

    An MLP's first layer is prunable: it holds most of an MLP's FLOPs. A ViT's
    ``qkv`` layers are left to head pruning.
    """
    layers = prunable_layers(model)
    convs = [m for m in layers if isinstance(m, nn.modules.conv._ConvNd)]
    return layers[-1:] + convs[:1] + attention_layers(model)


def _check_not_emptied(model: nn.Module) -> None:
    for name, module in model.named_modules():
        weight = getattr(module, "weight", None)
        if isinstance(weight, torch.Tensor) and weight.numel() == 0:
            raise PruneError(f"structured pruning emptied layer {name!r}")


def _device(model: nn.Module) -> torch.device:
    reference = next(model.parameters(), None)
    return reference.device if reference is not None else torch.device("cpu")


def _apply(model: nn.Module, setting: StructuredPrune, input_shape: tuple[int, ...]) -> nn.Module:
    return prune_structured(
        model,
        input_shape,
        flops_remaining=setting.flops_remaining,
        scope=setting.scope,
        residual=setting.residual,
        tolerance=setting.tolerance,
        criterion=setting.criterion,
    )


PRUNERS.register(StructuredPrune.pruner, Pruner(_apply, resizes=True))
