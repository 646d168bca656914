"""Attention-head pruning.

A head goes as a whole: its query, key and value rows of ``qkv`` and its
columns of ``proj``, so the head width, and with it the attention scale, is
unchanged. An attention block is any module with an integer ``heads`` and
Linear ``qkv`` and ``proj`` layers that reads its head width from them (the
ViT family's ``Attention``), so it keeps working with fewer heads; no family
is imported here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch_pruning as tp
from torch import nn

# One removable set of units (channels or heads): how to rank them (computed only when
# asked, since trial copies need no ranking) and how to drop some of them.
Group = tuple[Callable[[], torch.Tensor], Callable[[list[int]], None]]


def is_attention(module: nn.Module) -> bool:
    """Whether ``module`` is a multi-head attention block that loses heads whole."""
    return (
        isinstance(getattr(module, "heads", None), int)
        and isinstance(getattr(module, "qkv", None), nn.Linear)
        and isinstance(getattr(module, "proj", None), nn.Linear)
    )


def attention_layers(model: nn.Module) -> list[nn.Module]:
    """The ``qkv`` layers, whose rows go only with whole heads."""
    return [module.qkv for module in model.modules() if is_attention(module)]


def head_groups(model: nn.Module, rank: Callable[[nn.Module], torch.Tensor]) -> list[Group]:
    """One group per attention block, its heads scored by ``rank``."""
    return [
        (functools.partial(rank, module), functools.partial(_remove_heads, module))
        for module in model.modules()
        if is_attention(module)
    ]


def head_norms(attention: nn.Module, p: int) -> torch.Tensor:
    """Each head's mean over its ``qkv`` rows of sum |w|^p: one filter's norm^p, per head."""
    rows = attention.qkv.weight.detach().abs().pow(p).sum(dim=1)
    return rows.view(3, attention.heads, -1).mean(dim=(0, 2))


def _remove_heads(attention: nn.Module, heads: list[int]) -> None:
    inner = attention.proj.in_features
    width = inner // attention.heads
    columns = [head * width + j for head in heads for j in range(width)]
    tp.prune_linear_out_channels(
        attention.qkv, [part * inner + c for part in range(3) for c in columns]
    )
    tp.prune_linear_in_channels(attention.proj, columns)
    attention.heads -= len(heads)
