"""Fold BatchNorm into the preceding conv or linear layer, as deployed int8 models do.

Quantizing after folding is what A.4 asks for: the BN scale then lives in the
weights that get quantized, instead of staying in float beside them.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from minarch.errors import QuantError

_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_FOLDABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


@torch.no_grad()
def _fold_pair(
    layer: nn.Conv1d | nn.Conv2d | nn.Conv3d | nn.Linear, norm: nn.modules.batchnorm._BatchNorm
) -> None:
    if not norm.track_running_stats or norm.running_mean is None:
        raise QuantError(f"cannot fold {norm}: it has no running statistics to fold")
    weight = layer.weight
    if weight.shape[0] != norm.num_features:
        raise QuantError(
            f"cannot fold {norm} into {layer}: {weight.shape[0]} output channels "
            f"but {norm.num_features} BN features"
        )
    gain = torch.rsqrt(norm.running_var + norm.eps)
    if norm.affine:
        gain = gain * norm.weight
    bias = layer.bias if layer.bias is not None else torch.zeros_like(norm.running_mean)
    new_bias = (bias - norm.running_mean) * gain
    if norm.affine:
        new_bias = new_bias + norm.bias
    weight.mul_(gain.reshape(-1, *([1] * (weight.dim() - 1))))
    layer.bias = nn.Parameter(new_bias.to(weight.dtype))


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A folded eval-mode copy; a BN not directly after a conv/linear in a Sequential is an error.

    Only ``Sequential`` neighbours are folded because only there is the data
    flow certain from the module tree; any BN left over raises rather than
    being silently kept in float.
    """
    folded = copy.deepcopy(model).eval()
    for container in folded.modules():
        if not isinstance(container, nn.Sequential):
            continue
        names = list(container._modules)
        for previous, name in zip(names, names[1:], strict=False):
            norm, layer = container._modules[name], container._modules[previous]
            if isinstance(norm, _NORMS) and isinstance(layer, _FOLDABLE):
                _fold_pair(layer, norm)
                container._modules[name] = nn.Identity()
    left = [name for name, module in folded.named_modules() if isinstance(module, _NORMS)]
    if left:
        raise QuantError(
            f"cannot fold BatchNorm {', '.join(left)}: it does not directly follow a "
            "Conv or Linear layer inside an nn.Sequential"
        )
    return folded
