"""Pruning: structured (L1 filter, Torch-Pruning) and unstructured (weight magnitude).

Both return a pruned copy and leave the model passed in untouched; a pruned
model is stored as a state dict plus its layer widths (no pickled modules).
Masks keep unstructured zeros through fine-tuning, and ``imp_step`` runs one
round of iterative magnitude pruning with rewinding.
"""

from minarch.errors import PruneError
from minarch.prune.imp import imp_step
from minarch.prune.masks import apply_masks_now, is_masked, keep_pruned
from minarch.prune.serialize import architecture, load_pruned, save_pruned
from minarch.prune.structured import layer_widths, prune_structured
from minarch.prune.unstructured import prunable_weights, prune_unstructured, sparsity

__all__ = [
    "PruneError",
    "apply_masks_now",
    "architecture",
    "imp_step",
    "is_masked",
    "keep_pruned",
    "layer_widths",
    "load_pruned",
    "prunable_weights",
    "prune_structured",
    "prune_unstructured",
    "save_pruned",
    "sparsity",
]
