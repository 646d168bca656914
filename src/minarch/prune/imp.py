"""Iterative magnitude pruning with weight rewinding (Frankle & Carbin 2019; Frankle et al. 2020).

A round ranks the trained weights, removes a fixed fraction of those still
left, and sets the survivors back to their values at the rewind point (the
initialisation, or an early epoch) to be trained again under the masks. Each
round removes round(rate × remaining) weights (per layer with scope "layer"),
so k rounds reach a sparsity of 1 − (1 − rate)^k up to that rounding.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import torch
from torch import nn

from minarch.errors import PruneError
from minarch.prune.masks import apply_masks_now, mask_layer
from minarch.prune.unstructured import Scope, check_scope, prunable_layers, zero_smallest


def imp_step(
    trained: nn.Module, rewind_state: Mapping[str, torch.Tensor], *, rate: float, scope: Scope
) -> nn.Module:
    """A masked copy holding ``rewind_state`` where ``trained``'s largest weights survive.

    ``trained`` is left untouched; its zeros (its masks, if it has any) count
    as already pruned. The copy carries masks (``keep_pruned``), ready to train.
    """
    check_scope(scope)
    if not 0 < rate <= 1:
        raise PruneError(f"IMP rate must be in (0, 1], got {rate}")
    ticket = apply_masks_now(copy.deepcopy(trained))
    layers = prunable_layers(ticket)
    if not layers:
        raise PruneError(f"{type(trained).__name__} has no Linear or Conv weights to prune")
    weights = [layer.weight for layer in layers]
    with torch.no_grad():
        for share in [weights] if scope == "global" else [[w] for w in weights]:
            zeros = sum(int((w == 0).sum()) for w in share)
            remaining = sum(w.numel() for w in share) - zeros
            zero_smallest(share, zeros + round(rate * remaining))
    keeps = [layer.weight.detach() != 0 for layer in layers]
    _check_fits(ticket, rewind_state)
    ticket.load_state_dict(rewind_state)
    for layer, keep in zip(layers, keeps, strict=True):
        mask_layer(layer, keep)
    return ticket


def _check_fits(model: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    own = model.state_dict()
    misfits = sorted(
        key
        for key in own.keys() | state.keys()
        if key not in own or key not in state or own[key].shape != state[key].shape
    )
    if misfits:
        raise PruneError(
            f"the rewind state does not fit this {type(model).__name__}: {', '.join(misfits[:3])} "
            "missing, extra or reshaped; pass the state dict of the same model at "
            "initialisation or at an early epoch"
        )
