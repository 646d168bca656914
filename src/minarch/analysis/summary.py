"""The per-architecture aggregates the report's figures and summary read.

Base runs only (``selection.base_runs``). Each architecture shows its chosen
configuration (``selection``) and its accuracy: the mean final validation
accuracy over all that configuration's seeds, a diverged seed at chance, the
same number ``analyze`` gives (docs/methods.md A.1). Diverged runs are also
drawn apart, at the best accuracy they reached before diverging.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from minarch.analysis.selection import ARCH, base_runs, chosen_configurations, in_configurations

RUN_COLUMNS = [
    "run_id",
    "study",
    *ARCH,
    "params",
    "flops",
    "lr",
    "weight_decay",
    "seed",
    "state",
    "final_val_acc",
    "best_val_acc",
]
EPOCH_COLUMNS = ["run_id", "epoch", "train_loss", "val_acc"]
ARCHITECTURE_COLUMNS = [*ARCH, "params", "flops", "lr", "weight_decay", "n_seeds", "n_done"]
ARCHITECTURE_COLUMNS += ["acc_mean", "acc_std", "n_diverged"]


def finished(runs: pd.DataFrame) -> pd.DataFrame:
    """Done runs with a finite accuracy: the only ones that count towards a mean."""
    return runs[(runs["state"] == "done") & np.isfinite(runs["best_val_acc"].astype(float))]


def architectures(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per architecture: size, chosen configuration, accuracy over its seeds.

    Columns ``ARCHITECTURE_COLUMNS``: ``acc_mean``/``acc_std`` are the final
    validation accuracy over the chosen configuration's ``n_seeds`` seeds, a
    diverged seed counting at chance (std NaN with one seed); ``n_done``
    counts its done seeds; ``n_diverged`` counts the diverged runs of every
    configuration. An architecture without a configuration whose seeds all
    finished has NaN configuration and accuracy. Sorted by dataset, family, params.
    """
    runs = base_runs(runs)
    if runs.empty:  # merging an empty frame trips over its untyped key columns
        return pd.DataFrame(columns=ARCHITECTURE_COLUMNS)
    chosen = chosen_configurations(runs)
    done = (
        finished(in_configurations(runs, chosen))
        .groupby(ARCH, dropna=False)
        .size()
        .rename("n_done")
        .reset_index()
    )
    sizes = runs.groupby(ARCH, dropna=False).agg(
        params=("params", "first"),
        flops=("flops", "first"),
        n_diverged=("state", lambda s: int((s == "diverged").sum())),
    )
    picked = chosen[[*ARCH, "lr", "weight_decay", "n_seeds", "acc_mean", "acc_std"]]
    table = sizes.reset_index().merge(picked, on=ARCH, how="left").merge(done, on=ARCH, how="left")
    for count in ("n_seeds", "n_done"):
        table[count] = table[count].fillna(0).astype(int)
    table = table[ARCHITECTURE_COLUMNS]
    return table.sort_values(["dataset", "family", "params"], kind="stable", ignore_index=True)


def chosen_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The finished runs of each architecture's chosen configuration (its seeds)."""
    runs = base_runs(runs)
    return finished(in_configurations(runs, chosen_configurations(runs)))


def diverged(runs: pd.DataFrame, epochs: pd.DataFrame) -> pd.DataFrame:
    """Diverged runs with the best accuracy they reached (from their curve if unrecorded)."""
    runs = base_runs(runs)
    out = runs[runs["state"] == "diverged"].copy()
    curve_best = epochs.groupby("run_id")["val_acc"].max()
    out["acc"] = out["best_val_acc"].astype(float).fillna(out["run_id"].map(curve_best))
    return out[np.isfinite(out["acc"].astype(float))]
