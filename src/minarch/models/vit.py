"""Vision transformer (Dosovitskiy et al. 2021): patches, class token, pre-norm encoder.

Attention is written out with ``scaled_dot_product_attention`` rather than
``nn.MultiheadAttention`` so the model runs under ``torch.func.functional_call``
and ``vmap`` (fused fleets of models).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from minarch.models.families.vit import ViTConfig
from minarch.models.init import OwnParameters


class Attention(nn.Module):
    """Multi-head self-attention; the head width comes from its own layers, so pruning
    whole heads (``minarch.prune``) leaves a working module."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        batch, tokens, _ = x.shape
        inner = self.proj.in_features
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.heads, inner // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(batch, tokens, inner))


class EncoderBlock(nn.Module):
    def __init__(self, dim: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module, OwnParameters):
    def __init__(
        self, in_channels: int, grid: tuple[int, ...], num_classes: int, config: ViTConfig
    ) -> None:
        """``grid``: patches per spatial side (``ViTConfig.grid``)."""
        super().__init__()
        p = config.patch_size
        self.patch_size = p
        self.grid = grid
        self.patch_embed = nn.Linear(in_channels * p ** len(grid), config.dim)
        self.cls_token = nn.Parameter(torch.empty(1, 1, config.dim))
        self.pos_embed = nn.Parameter(torch.empty(1, math.prod(grid) + 1, config.dim))
        self.blocks = nn.Sequential(
            *(EncoderBlock(config.dim, config.heads, config.hidden) for _ in range(config.depth))
        )
        self.norm = nn.LayerNorm(config.dim)
        self.head = nn.Linear(config.dim, num_classes)

    def init_own_parameters(self, generator: torch.Generator | None) -> None:
        nn.init.trunc_normal_(self.cls_token, std=0.02, generator=generator)
        nn.init.trunc_normal_(self.pos_embed, std=0.02, generator=generator)

    def patchify(self, x):
        """(B, C, *spatial) -> (B, patches, C·p^d), patches in row-major grid order."""
        batch, channels, p = x.shape[0], x.shape[1], self.patch_size
        split = [channels]
        for cells in self.grid:
            split += [cells, p]
        x = x.reshape(batch, *split)
        ndim = len(self.grid)
        grid_axes = [2 + 2 * i for i in range(ndim)]
        patch_axes = [1] + [3 + 2 * i for i in range(ndim)]
        x = x.permute(0, *grid_axes, *patch_axes)
        return x.reshape(batch, math.prod(self.grid), -1)

    def forward(self, x):
        tokens = self.patch_embed(self.patchify(x))
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        tokens = torch.cat([cls, tokens], dim=1) + self.pos_embed
        return self.head(self.norm(self.blocks(tokens))[:, 0])


def build(config: ViTConfig, input_shape: tuple[int, ...], num_classes: int) -> ViT:
    return ViT(input_shape[0], config.grid(input_shape), num_classes, config)
