"""The run aggregates every section reads, computed one way for all of them.

An architecture is (dataset, family, model). Its *chosen configuration* is the
(learning rate, weight decay) pair with the highest mean best validation
accuracy over its finished seeds, so a sweep over hyperparameters still gives
one point per architecture, and the figures and the table agree on which runs
that point stands for.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ARCH = ["dataset", "family", "model"]
CONFIG = [*ARCH, "lr", "weight_decay"]
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
    "best_val_acc",
]
EPOCH_COLUMNS = ["run_id", "epoch", "train_loss", "val_acc"]


def finished(runs: pd.DataFrame) -> pd.DataFrame:
    """Done runs with a finite accuracy: the only ones that count towards a mean."""
    return runs[(runs["state"] == "done") & np.isfinite(runs["best_val_acc"].astype(float))]


def architectures(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per architecture: size, chosen configuration, accuracy over its seeds.

    Columns: ARCH, params, flops, lr, weight_decay, n_done, acc_mean, acc_std
    (NaN with one seed), n_diverged. Architectures with no finished run keep
    NaN accuracy and configuration. Sorted by dataset, family, params.
    """
    per_config = (
        finished(runs)
        .groupby(CONFIG, dropna=False)["best_val_acc"]
        .agg(acc_mean="mean", acc_std="std", n_done="count")
        .reset_index()
        .sort_values(["acc_mean", "n_done"], ascending=False, kind="stable")
        .drop_duplicates(ARCH)
    )
    sizes = runs.groupby(ARCH, dropna=False).agg(
        params=("params", "first"),
        flops=("flops", "first"),
        n_diverged=("state", lambda s: int((s == "diverged").sum())),
    )
    table = sizes.reset_index().merge(per_config, on=ARCH, how="left")
    table["n_done"] = table["n_done"].fillna(0).astype(int)
    return table.sort_values(["dataset", "family", "params"], kind="stable", ignore_index=True)


def chosen_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The finished runs of each architecture's chosen configuration (its seeds)."""
    done = finished(runs)
    if done.empty:  # merging an empty frame trips over its untyped key columns
        return done
    chosen = architectures(runs).dropna(subset=["acc_mean"])[CONFIG]
    return done.merge(chosen, on=CONFIG, how="inner")


def diverged(runs: pd.DataFrame, epochs: pd.DataFrame) -> pd.DataFrame:
    """Diverged runs with the best accuracy they reached (from their curve if unrecorded)."""
    out = runs[runs["state"] == "diverged"].copy()
    curve_best = epochs.groupby("run_id")["val_acc"].max()
    out["acc"] = out["best_val_acc"].astype(float).fillna(out["run_id"].map(curve_best))
    return out[np.isfinite(out["acc"].astype(float))]
