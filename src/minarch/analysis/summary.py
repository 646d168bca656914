"""The per-architecture aggregates the report's figures and summary read.

Base runs only (``selection.base_runs``). Each architecture shows its chosen
configuration (``selection``); its points are the best validation accuracy
over that configuration's done seeds, and diverged runs are drawn apart, at
the best accuracy they reached.
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
ARCHITECTURE_COLUMNS = [*ARCH, "params", "flops", "lr", "weight_decay", "n_done", "acc_mean"]
ARCHITECTURE_COLUMNS += ["acc_std", "n_diverged"]


def finished(runs: pd.DataFrame) -> pd.DataFrame:
    """Done runs with a finite accuracy: the only ones that count towards a mean."""
    return runs[(runs["state"] == "done") & np.isfinite(runs["best_val_acc"].astype(float))]


def architectures(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per architecture: size, chosen configuration, accuracy over its done seeds.

    Columns ``ARCHITECTURE_COLUMNS``: ``acc_mean``/``acc_std`` are the best
    validation accuracy over the chosen configuration's done seeds (std NaN
    with one seed); ``n_diverged`` counts the diverged runs of every
    configuration. An architecture without a done or diverged run has NaN
    configuration; one whose chosen configuration has no done seed has NaN
    accuracy. Sorted by dataset, family, params.
    """
    runs = base_runs(runs)
    if runs.empty:  # merging an empty frame trips over its untyped key columns
        return pd.DataFrame(columns=ARCHITECTURE_COLUMNS)
    chosen = chosen_configurations(runs)[[*ARCH, "lr", "weight_decay"]]
    stats = (
        finished(in_configurations(runs, chosen))
        .groupby(ARCH, dropna=False)["best_val_acc"]
        .agg(acc_mean="mean", acc_std="std", n_done="count")
        .reset_index()
    )
    sizes = runs.groupby(ARCH, dropna=False).agg(
        params=("params", "first"),
        flops=("flops", "first"),
        n_diverged=("state", lambda s: int((s == "diverged").sum())),
    )
    table = sizes.reset_index().merge(chosen, on=ARCH, how="left")
    table = table.merge(stats, on=ARCH, how="left")[ARCHITECTURE_COLUMNS]
    table["n_done"] = table["n_done"].fillna(0).astype(int)
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
