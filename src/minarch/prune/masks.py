"""Masks that keep unstructured-pruning zeros through fine-tuning and IMP rounds.

Each prunable layer gets a forward pre-hook holding its mask and zeroing the
pruned weights before the layer runs. The mask lives in the hook, not in the
state dict, so a masked model keeps its family's own keys and ``copy.deepcopy``
copies the masks with it. An optimizer step can still move a pruned weight
(its gradient, momentum, weight decay); the next forward, in training or
evaluation mode, zeroes it before it is used. So the state dict is exactly
sparse after a forward, as after the trainer's end-of-epoch evaluation;
``apply_masks_now`` makes it so without one. Hooks run in the plain training
engine only: train a masked model with ``engine="plain"``.
"""

from __future__ import annotations

import torch
from torch import nn

from minarch.prune.unstructured import prunable_layers


class _Mask:
    """Forward pre-hook multiplying its layer's weight by a fixed 0/1 mask."""

    def __init__(self, mask: torch.Tensor) -> None:
        self.mask = mask

    def __call__(self, layer: nn.Module, args: tuple) -> None:
        self.apply(layer)

    def apply(self, layer: nn.Module) -> None:
        if self.mask.device != layer.weight.device:
            self.mask = self.mask.to(layer.weight.device)
        with torch.no_grad():
            layer.weight.mul_(self.mask)


def keep_pruned(model: nn.Module) -> nn.Module:
    """Hold every Linear/Conv weight at zero where it is zero now; returns ``model``.

    Earlier masks are replaced, so a model pruned further is masked anew.
    """
    for layer in prunable_layers(model):
        mask_layer(layer, layer.weight.detach() != 0)
    return model


def mask_layer(layer: nn.Module, mask: torch.Tensor) -> None:
    """Hold ``layer``'s weight at zero wherever ``mask`` is false, from now on."""
    hooks = layer._forward_pre_hooks
    for key in [key for key, hook in hooks.items() if isinstance(hook, _Mask)]:
        del hooks[key]
    hook = _Mask(mask.to(device=layer.weight.device, dtype=torch.bool))
    hook.apply(layer)
    layer.register_forward_pre_hook(hook)


def apply_masks_now(model: nn.Module) -> nn.Module:
    """Zero the masked weights without a forward, say after the last step; returns ``model``."""
    for layer in prunable_layers(model):
        for hook in list(layer._forward_pre_hooks.values()):
            if isinstance(hook, _Mask):
                hook.apply(layer)
    return model


def is_masked(model: nn.Module) -> bool:
    """Whether any layer carries a mask (a model to train with the plain engine)."""
    return any(
        isinstance(hook, _Mask)
        for layer in prunable_layers(model)
        for hook in layer._forward_pre_hooks.values()
    )
