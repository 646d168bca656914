"""Where a study should grow: its lr x wd grid where a ROI touches an edge, its sizes
where P_stable or P_min sits at an edge of the sizes tested."""

from __future__ import annotations

import numpy as np
import pandas as pd

from minarch.analysis.hpspace import grid_extension, surface
from minarch.analysis.result import analyze
from minarch.analysis.selection import chance
from minarch.spec.schema import AnalysisSpec

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


def size_directions(minimal: pd.DataFrame) -> dict[str, set[str]]:
    """Per family, where its sizes should grow so P_stable and P_min get bracketed.

    ``minimal`` has one row per (dataset, family) with ``p_stable_edge`` and
    ``p_min_edge``: "lower" (the smallest size tested already qualifies),
    "upper" (only the largest does), "not_reached" (none does) or ""
    (bracketed). A lower edge on any dataset asks for a smaller
    size ("down"), an upper or unreached one for a larger size ("up"): the
    sizes a family gains are trained on every dataset, as the grid's are.
    """
    directions: dict[str, set[str]] = {}
    for row in minimal.itertuples():
        for edge in (row.p_stable_edge, row.p_min_edge):
            if edge == "lower":
                directions.setdefault(row.family, set()).add("down")
            elif edge in ("upper", "not_reached"):
                directions.setdefault(row.family, set()).add("up")
    return directions


def size_extensions(runs: pd.DataFrame, epochs: pd.DataFrame, thresholds: AnalysisSpec) -> dict:
    """``size_directions`` of a study's runs as they stand (finished base runs only)."""
    result = analyze(runs, epochs, thresholds)
    return size_directions(_edges(result.minimal, result.architectures))


def _edges(minimal: pd.DataFrame, architectures: pd.DataFrame) -> pd.DataFrame:
    """Edges from the minimal table's older columns (p_min, reached, p_min_at_edge).

    TODO(stats): goes once the stats branch is merged, whose minimal table
    carries ``p_stable_edge`` and ``p_min_edge`` itself; a table that has them
    passes through unchanged.
    """
    if "p_min_edge" in minimal.columns:
        return minimal
    smallest = architectures.groupby(["dataset", "family"])["params"].min()
    smallest = minimal.join(smallest.rename("smallest"), on=["dataset", "family"])["smallest"]
    edge = np.select(
        [~minimal["reached"], minimal["p_min"] == smallest, minimal["p_min_at_edge"]],
        ["not_reached", "lower", "upper"],
        "",
    )
    return minimal.assign(p_min_edge=edge, p_stable_edge="")
