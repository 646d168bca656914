"""Where a study's lr x wd grid should grow: every edge some variant's ROI touches."""

from __future__ import annotations

import pandas as pd

from minarch.analysis.hpspace import grid_extension, surface
from minarch.analysis.selection import chance

GRID = ["dataset", "family", "model", "variant"]


def grid_extensions(runs: pd.DataFrame, *, x: float = 1.0) -> tuple[list[float], list[float]]:
    """New (lr, weight decay) values: one step past each edge an x-ROI touches.

    Every (dataset, model, variant) on a grid of at least 2 x 2 points votes,
    except one that learned nothing (it has no ROI, see ``hpspace.roi``);
    the union is returned, so all variants keep sharing one grid (the risk
    analysis compares them point by point).
    """
    new_lr: set[float] = set()
    new_wd: set[float] = set()
    for (dataset, *_), group in runs.groupby(GRID, sort=False):
        if group["lr"].nunique() < 2 or group["weight_decay"].nunique() < 2:
            continue
        surf = surface(group)
        if surf.empty:
            continue
        proposal = grid_extension(surf, x, chance=chance(dataset))
        new_lr.update(proposal["lr"])
        new_wd.update(proposal["weight_decay"])
    return sorted(new_lr), sorted(new_wd)
