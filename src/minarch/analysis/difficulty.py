"""How hard each dataset is, measured on the study's own runs (docs/methods.md A.5).

A dataset's difficulty is the normalised error of the best architecture the
study trained on it, (1 − best accuracy) / (1 − chance): 0 when some model
is perfect, 1 when none beats guessing, so datasets with different class
counts compare. The best accuracy is the highest mean final validation
accuracy of any architecture's chosen configuration (``selection``). A
study may instead give the order itself (``analysis.difficulty_order``);
datasets it does not list follow, measured.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from minarch.analysis.selection import chance, chosen_configurations

DIFFICULTY_COLUMNS = ["dataset", "best_acc", "chance", "normalised_error", "rank", "source"]


def difficulty(
    runs: pd.DataFrame,
    *,
    order: Sequence[str] = (),
    num_classes: Mapping[str, int] | None = None,
) -> pd.DataFrame:
    """One row per dataset with a finished base run, easiest first (``rank`` 0).

    ``source`` is "study" for a dataset placed by ``order``, "measured" for
    one placed by its normalised error. A dataset without any finite
    accuracy ranks after every measured one.
    """
    chosen = chosen_configurations(runs, num_classes=num_classes)
    best = chosen.groupby("dataset", sort=False)["acc_mean"].max()
    table = pd.DataFrame({"dataset": best.index.astype(str), "best_acc": best.to_numpy(float)})
    table["chance"] = [chance(d, num_classes) for d in table["dataset"]]
    table["normalised_error"] = (1 - table["best_acc"]) / (1 - table["chance"])
    given = {name: i for i, name in enumerate(order)}
    table["source"] = np.where(table["dataset"].isin(list(given)), "study", "measured")
    table["_given"] = table["dataset"].map(given).fillna(len(given))
    table = table.sort_values(
        ["_given", "normalised_error"], kind="stable", na_position="last", ignore_index=True
    )
    table["rank"] = np.arange(len(table))
    return table[DIFFICULTY_COLUMNS]


def dataset_order(
    runs: pd.DataFrame,
    *,
    order: Sequence[str] = (),
    num_classes: Mapping[str, int] | None = None,
) -> list[str]:
    """Every dataset of ``runs``, easy to hard; those without a finished run last, by name."""
    measured = difficulty(runs, order=order, num_classes=num_classes)["dataset"].tolist()
    rest = sorted(set(runs["dataset"].astype(str)) - set(measured))
    return [*measured, *rest]


def in_order(names: Iterable[object], order: Sequence[str]) -> list[str]:
    """The distinct ``names`` in ``order``; names it lacks follow in the order they came."""
    present = list(dict.fromkeys(str(name) for name in names))
    rank = {name: i for i, name in enumerate(order)}
    return sorted(present, key=lambda name: rank.get(name, len(rank)))
