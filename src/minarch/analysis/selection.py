"""The configuration that stands for an architecture (docs/methods.md A.1), chosen one way for all.

An architecture is (dataset, family, model); a configuration adds its
learning rate and weight decay. Each architecture is represented by its
*chosen configuration*: the one with the highest mean final validation
accuracy over ALL its seeds, a diverged seed counting at chance (as the
hyperparameter-space analysis counts a diverged run as 0 %), so a learning
rate that one seed in three survives never represents it. Ties go to the
smallest learning rate, then weight decay. The regime map, P_min, the
figures, the summary and the pruning and quantization sections all show
this configuration.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from minarch.columns import require_columns
from minarch.data import dataset_info, dataset_names

ARCH = ["dataset", "family", "model"]
CONFIG = [*ARCH, "params", "lr", "weight_decay"]
CLASSIFIED_STATES = ("done", "diverged")  # pending, running and failed runs have no verdict
BASE = "base"
"""The ``variant`` of a run trained from its own initialisation on the grid."""
ORDER = ["dataset", "family", "params", "model", "lr", "weight_decay"]
"""Configurations sorted so each architecture's rows are contiguous, smallest lr first."""
CHOSEN_COLUMNS = [*CONFIG, "n_seeds", "acc_mean", "acc_std"]
VALIDATION = "config.dataset.validation"
"""The runs table's column saying what a run validated on: "test" or a held-out fraction."""


def chance(dataset: object, num_classes: Mapping[str, int] | None = None) -> float:
    """1 / classes from ``num_classes`` or the dataset registry; 0 when neither knows.

    Image folders learn their class count only when loaded, so their callers
    pass ``num_classes``.
    """
    classes = (num_classes or {}).get(str(dataset))
    if classes is None and dataset in dataset_names():
        classes = dataset_info(str(dataset)).num_classes
    return 1 / classes if classes else 0.0


def base_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs docs/methods.md A.1-A.2 read: those trained from their own initialisation.

    Pruned, fine-tuned, retrained, rewound and quantization-aware runs reuse
    their parent's model label and seed, so counted here they would pass for
    extra seeds or configurations; they belong to the compression analyses.
    A table without a ``variant`` column holds base runs only.
    """
    return runs[runs["variant"] == BASE] if "variant" in runs.columns else runs


def complete_configurations(runs: pd.DataFrame) -> pd.DataFrame:
    """The base ``runs`` of configurations whose every seed is done or diverged.

    A configuration with a seed still pending, running or failed is left out
    of A.1-A.5 whole: averaging the seeds that happen to be finished would
    make its mean, stability and regime depend on when one looked.
    """
    runs = base_runs(require_columns(runs, [*CONFIG, "state"], "runs"))
    waiting = _waiting(runs)
    if waiting.empty:
        return runs
    keys = runs[CONFIG].merge(waiting.assign(_waiting=True), on=CONFIG, how="left")["_waiting"]
    return runs[keys.isna().to_numpy()]


def incomplete_count(runs: pd.DataFrame) -> int:
    """How many configurations ``complete_configurations`` leaves out."""
    return len(_waiting(base_runs(require_columns(runs, [*CONFIG, "state"], "runs"))))


def _waiting(runs: pd.DataFrame) -> pd.DataFrame:
    """The configurations of ``runs`` with a seed neither done nor diverged."""
    return runs.loc[~runs["state"].isin(CLASSIFIED_STATES), CONFIG].drop_duplicates()


def incomplete_note(count: int) -> str | None:
    """The banner of a table or report that left ``count`` configurations out; None for 0."""
    if not count:
        return None
    return (
        f"{count} configuration{'s' if count != 1 else ''} with seeds not yet finished "
        "(pending, running or failed) left out of the regimes, P_stable, P_min, the "
        "compression analyses and the claims; analyse again when they finish."
    )


def seed_accuracy(runs: pd.DataFrame) -> pd.Series:
    """Each run's final validation accuracy, a diverged run's taken as ``chance``."""
    final = runs["final_val_acc"].astype(float)
    return final.where(runs["state"] != "diverged", runs["chance"].astype(float))


def configurations(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration of finished ``runs``: ``CHOSEN_COLUMNS`` plus ``chosen``.

    ``runs`` holds ``CONFIG``, ``run_id``, ``state``, ``final_val_acc`` and
    ``chance``, one row per done or diverged seed. ``acc_mean``/``acc_std``
    are over ``seed_accuracy`` (std NaN with one seed). Sorted by ``ORDER``.
    """
    table = (
        runs.assign(_acc=seed_accuracy(runs))
        .groupby(CONFIG, dropna=False)
        .agg(n_seeds=("run_id", "size"), acc_mean=("_acc", "mean"), acc_std=("_acc", "std"))
        .reset_index()
        .sort_values(ORDER, kind="stable", ignore_index=True)
    )
    table["chosen"] = False
    if len(table):
        picked = best_configurations(table["acc_mean"].to_numpy()[None], architecture_starts(table))
        table.loc[picked[0], "chosen"] = True
    return table


def chosen_configurations(
    runs: pd.DataFrame, *, num_classes: Mapping[str, int] | None = None
) -> pd.DataFrame:
    """Each architecture's chosen configuration from a store runs table, ``CHOSEN_COLUMNS``.

    Only configurations whose every base run is done or diverged count
    (``complete_configurations``); an architecture without one has no row.
    """
    runs = require_columns(runs, [*CONFIG, "run_id", "state", "final_val_acc"], "runs")
    finished = complete_configurations(runs)
    finished = finished.assign(chance=finished["dataset"].map(lambda d: chance(d, num_classes)))
    if finished.empty:
        return pd.DataFrame(columns=CHOSEN_COLUMNS)
    table = configurations(finished)
    return table.loc[table["chosen"], CHOSEN_COLUMNS].reset_index(drop=True)


def validated_on_test(runs: pd.DataFrame) -> tuple[str, ...]:
    """Datasets whose finished base runs validated on the test split, by name.

    There the chosen configuration and best epoch were picked on test data, so
    their accuracies are optimistic (docs/methods.md A.1). "test" is the study
    file's default, so a table without the column (or a run without a value)
    counts as validating on it.
    """
    runs = base_runs(require_columns(runs, ["dataset", "state"], "runs"))
    runs = runs[runs["state"].isin(CLASSIFIED_STATES)]
    if VALIDATION not in runs.columns:
        return tuple(sorted(set(runs["dataset"].astype(str))))
    split = runs[VALIDATION]
    on_test = runs.loc[split.isna() | (split.astype(str) == "test"), "dataset"]
    return tuple(sorted(set(on_test.astype(str))))


def selection_note(datasets: Sequence[str]) -> str | None:
    """The one line printed beside a table whose selections used the test split; None if none."""
    if not datasets:
        return None
    return (
        f"Optimistic selections: {', '.join(datasets)} validated on the test split, so the "
        "chosen configurations and best epochs were picked on test data (give the dataset a "
        "held-out 'validation' fraction for unbiased numbers)."
    )


def architecture_starts(table: pd.DataFrame) -> np.ndarray:
    """Row positions where a new architecture begins in a table sorted by ``ORDER``."""
    keys = table[ARCH].astype(str).agg("\0".join, axis=1).to_numpy()
    return np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if len(keys) else np.zeros(0, int)


def best_configurations(acc: np.ndarray, starts: Sequence[int] | np.ndarray) -> np.ndarray:
    """For each row of ``acc`` (samples x configurations), each architecture's best column.

    Architectures are the column runs beginning at ``starts``; NaN accuracy
    never wins, and ties go to the first (smallest lr, then weight decay).
    """
    filled = np.where(np.isnan(acc), -np.inf, acc)
    bounds = zip(starts, [*starts[1:], acc.shape[1]], strict=True)
    return np.stack([start + filled[:, start:end].argmax(axis=1) for start, end in bounds], axis=1)


def in_configurations(rows: pd.DataFrame, chosen: pd.DataFrame) -> pd.DataFrame:
    """The ``rows`` (any table with ``ARCH``, lr and weight decay) of the ``chosen`` ones."""
    keys = [*ARCH, "lr", "weight_decay"]
    if rows.empty or chosen.empty:  # merging an empty frame trips over untyped key columns
        return rows.iloc[:0]
    return rows.merge(chosen[keys].astype({"lr": float, "weight_decay": float}), on=keys)
