"""Pruning: structured (filters ranked by a criterion, Torch-Pruning) and unstructured
(weight magnitude).

Both return a pruned copy and leave the model passed in untouched; a pruned
model is stored as a state dict plus its layer widths (no pickled modules).
Masks keep unstructured zeros through fine-tuning, and ``imp_step`` runs one
round of iterative magnitude pruning with rewinding. ``PRUNERS`` applies a
pruning setting by its pruner's name; ``CRITERIA`` holds the ranking criteria,
one file each in ``criteria/``.
"""

from minarch.errors import PruneError
from minarch.prune import criteria  # noqa: F401  (registers every criterion)
from minarch.prune.imp import imp_step
from minarch.prune.masks import apply_masks_now, is_masked, keep_pruned
from minarch.prune.registry import CRITERIA, PRUNERS, Criterion, Pruner
from minarch.prune.serialize import architecture, load_pruned, read_weights, save_pruned
from minarch.prune.structured import layer_widths, prune_structured
from minarch.prune.unstructured import prunable_weights, prune_unstructured, sparsity

__all__ = [
    "CRITERIA",
    "PRUNERS",
    "Criterion",
    "PruneError",
    "Pruner",
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
    "read_weights",
    "save_pruned",
    "sparsity",
]
