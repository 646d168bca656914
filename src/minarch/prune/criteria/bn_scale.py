"""Batch-norm scale (network slimming, Liu et al. 2017): a channel's score is |gamma| of the
batch norms it passes through, averaged over the group. Groups without batch norm, and
attention heads, cannot be ranked so: pruning such a model by bn-scale is an error."""

import torch_pruning as tp

from minarch.prune.registry import CRITERIA, Criterion

BN_SCALE = Criterion(
    "bn-scale",
    channels=tp.importance.BNScaleImportance(group_reduction="mean", normalizer=None),
    heads=None,
)
CRITERIA.register(BN_SCALE.name, BN_SCALE)
