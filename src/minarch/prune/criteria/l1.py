"""L1 (Li et al. 2017): a channel's score is the L1 norm of its filter in the group's root
layer; a head's is the mean L1 norm of its ``qkv`` rows, on the scale of one filter."""

import functools

import torch_pruning as tp

from minarch.prune.attention import head_norms
from minarch.prune.registry import CRITERIA, Criterion

L1 = Criterion(
    "l1",
    channels=tp.importance.MagnitudeImportance(p=1, normalizer=None, group_reduction="first"),
    heads=functools.partial(head_norms, p=1),
)
CRITERIA.register(L1.name, L1)
