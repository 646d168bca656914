"""L2: a channel's score is the squared L2 norm of its filter in the group's root layer
(the order of the L2 norms); a head's is the mean squared L2 norm of its ``qkv`` rows.

Unlike L1, a filter of a few large weights outranks one of many small ones.
"""

import functools

import torch_pruning as tp

from minarch.prune.attention import head_norms
from minarch.prune.registry import CRITERIA, Criterion

L2 = Criterion(
    "l2",
    channels=tp.importance.MagnitudeImportance(p=2, normalizer=None, group_reduction="first"),
    heads=functools.partial(head_norms, p=2),
)
CRITERIA.register(L2.name, L2)
