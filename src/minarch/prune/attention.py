"""Attention-head pruning for the ViT family.

A head goes as a whole: its query, key and value rows of ``qkv`` and its
columns of ``proj``, so the head width, and with it the attention scale, is
unchanged. A head's importance is the mean L1 norm of its ``qkv`` rows, on
the scale of one filter, so heads rank alongside channels (Torch-Pruning's
head importance). The ViT's attention reads its head width from its own
layers, so it keeps working with fewer heads.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch_pruning as tp
from torch import nn

from minarch.models.vit import Attention

# One removable set of units (channels or heads): how to rank them (computed only when
# asked, since trial copies need no ranking) and how to drop some of them.
Group = tuple[Callable[[], torch.Tensor], Callable[[list[int]], None]]


def attention_layers(model: nn.Module) -> list[nn.Module]:
    """The ``qkv`` layers, whose rows go only with whole heads."""
    return [module.qkv for module in model.modules() if isinstance(module, Attention)]


def head_groups(model: nn.Module) -> list[Group]:
    groups = []
    for module in model.modules():
        if isinstance(module, Attention):
            rank = functools.partial(_head_importance, module)
            groups.append((rank, functools.partial(_remove_heads, module)))
    return groups


def _head_importance(attention: Attention) -> torch.Tensor:
    rows = attention.qkv.weight.detach().abs().sum(dim=1)
    return rows.view(3, attention.heads, -1).mean(dim=(0, 2))


def _remove_heads(attention: Attention, heads: list[int]) -> None:
    inner = attention.proj.in_features
    width = inner // attention.heads
    columns = [head * width + j for head in heads for j in range(width)]
    tp.prune_linear_out_channels(
        attention.qkv, [part * inner + c for part in range(3) for c in columns]
    )
    tp.prune_linear_in_channels(attention.proj, columns)
    attention.heads -= len(heads)
