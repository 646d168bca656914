"""How many runs a study stands for, by arithmetic: nothing is expanded or built.

A hostile or mistyped study (``seeds: 1000000000``, a log10 grid with a tiny
step) must be refused before its runs exist in memory, so the count is the
product of the grid sizes, times one plus the derived runs of each ordinary run.
Repeated values in a list count once per repeat: the count is an upper bound.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType

from minarch.spec.derive import prune_settings
from minarch.spec.schema import StudySpec, grid_size
from minarch.spec.settings import StructuredPrune
from minarch.spec.sizes import ENTRY_KEYS, SizeKey


def count_runs(
    study: StudySpec,
    *,
    extra_lr: int = 0,
    extra_wd: int = 0,
    extra_sizes: Mapping[SizeKey, int] = MappingProxyType({}),
) -> int:
    """Ordinary and derived runs; the ``extra_`` numbers count grid and size extensions."""
    models = sum(
        math.prod(
            (len(entry[k]) if isinstance(entry.get(k), list) else 1) + extra_sizes.get((i, k), 0)
            for k in {*entry, *(f for j, f in extra_sizes if j == i)} - {"family", *ENTRY_KEYS}
        )
        for i, entry in enumerate(study.models)
    )
    base = (
        len(study.datasets)
        * models
        * (grid_size(study.training.lr) + extra_lr)
        * (grid_size(study.training.weight_decay) + extra_wd)
        * study.seed_count()
    )
    return base * (1 + derived_per_run(study))


def derived_per_run(study: StudySpec) -> int:
    """What ``derive.derived_runs`` adds for each ordinary run (a test holds the two equal)."""
    count, prune, quantize = 0, study.prune, study.quantize
    if prune is not None:
        settings = prune_settings(prune)
        structured = sum(isinstance(s, StructuredPrune) for s in settings)
        count += len(settings) * ("finetune" in prune.pipelines)
        count += structured * ("retrain" in prune.pipelines)  # over the parent or the grid
        count += prune.imp.rounds * ("imp" in prune.pipelines)
    if quantize is not None and quantize.qat is not None:  # QAT learns weights, not activations
        count += len(quantize.qat.bits) * len(quantize.granularity)
    return count
