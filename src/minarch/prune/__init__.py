"""Pruning: structured (L1 filter, Torch-Pruning) and unstructured (weight magnitude).

Both return a pruned copy and leave the model passed in untouched; a pruned
model is stored as a state dict plus its layer widths (no pickled modules).
"""

from minarch.errors import PruneError
from minarch.prune.serialize import architecture, load_pruned, save_pruned
from minarch.prune.structured import prune_structured
from minarch.prune.unstructured import prune_unstructured, sparsity

__all__ = [
    "PruneError",
    "architecture",
    "load_pruned",
    "prune_structured",
    "prune_unstructured",
    "save_pruned",
    "sparsity",
]
