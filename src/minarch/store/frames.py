"""Turn store rows into the pandas tables users analyse.

Columns are fixed where users rely on them (a metric nobody recorded yet is a
column of NaN), so notebooks do not break on a partly trained study.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from minarch.store.base import EPOCH_METRICS, RUN_STATES

RUN_COLUMNS = (
    "run_id",
    "study",
    "dataset",
    "family",
    "model",
    "params",
    "flops",
    "lr",
    "weight_decay",
    "seed",
    "parent_id",
    "variant",
    "state",
    "engine",
)
FINAL_METRICS = (
    "final_val_acc",
    "best_val_acc",
    "best_epoch",
    "final_train_acc",
    "final_train_loss",
    "final_train_eval_acc",
    "final_train_eval_loss",
    "final_val_loss",
    "final_val_top5",
    "train_seconds",
)
ENVIRONMENT_COLUMNS = tuple(
    f"env.{key}"
    for key in (
        "minarch",
        "git",
        "torch",
        "device",
        "threads",
        "workers",
        "deterministic",
        "memory_format",
        "host",
    )
)
"""Provenance of a run's numbers (``finish(environment=...)``), shown as columns."""
TAIL_COLUMNS = ("started_at", "finished_at", "message")
STATUS_COLUMNS = ("study", *RUN_STATES, "total")
EPOCH_COLUMNS = ("run_id", "epoch", *EPOCH_METRICS)


def flatten(config: Mapping[str, Any], prefix: str = "config.") -> dict[str, Any]:
    """Nested mappings to dotted column names, so configs line up as table columns.

    ``{"training": {"epochs": 5}}`` becomes ``{"config.training.epochs": 5}``.
    """
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def status_frame(
    counts: Iterable[tuple[str, str, int]], study_names: Iterable[str]
) -> pd.DataFrame:
    """``counts`` holds (study, state, n); every study gets a row, zeros included."""
    table = {name: dict.fromkeys(RUN_STATES, 0) for name in study_names}
    for study, state, n in counts:
        table[study][state] = int(n)
    rows = [
        {"study": name, **by_state, "total": sum(by_state.values())}
        for name, by_state in sorted(table.items())
    ]
    return pd.DataFrame(rows, columns=list(STATUS_COLUMNS)).astype(
        dict.fromkeys((*RUN_STATES, "total"), "int64")
    )


def runs_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """``rows`` hold the run columns plus ``config``, ``metrics`` and the tail columns."""
    records = []
    config_columns: dict[str, None] = {}  # ordered set: first appearance order
    metric_columns: dict[str, None] = dict.fromkeys(FINAL_METRICS)
    for row in rows:
        config = flatten(row["config"])
        config_columns.update(dict.fromkeys(config))
        metric_columns.update(dict.fromkeys(sorted(row["metrics"])))
        records.append(
            {
                **{column: row[column] for column in RUN_COLUMNS},
                **config,
                **row["metrics"],
                **flatten(row.get("environment") or {}, "env."),
                **{column: row[column] for column in TAIL_COLUMNS},
            }
        )
    columns = [*RUN_COLUMNS, *config_columns, *metric_columns, *ENVIRONMENT_COLUMNS, *TAIL_COLUMNS]
    frame = pd.DataFrame(records, columns=columns)
    for column in ("started_at", "finished_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def epochs_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame([dict(row) for row in rows], columns=list(EPOCH_COLUMNS))
    return frame.astype(dict.fromkeys(EPOCH_METRICS, "float64"))


def code_versions(runs: pd.DataFrame) -> pd.Series:
    """How many finished runs of ``runs_frame`` each version of minarch trained, most first.

    A version is ``env.minarch`` (which names the git revision when installed
    from a checkout) with ``env.git`` (the revision run from, if any).
    """
    if not {"state", "env.minarch"} <= set(runs.columns):  # a table made without provenance
        return pd.Series(dtype="int64")
    finished = runs[runs["state"].isin(["done", "diverged"]) & runs["env.minarch"].notna()]
    version = finished["env.minarch"].astype(str)
    git = finished.get("env.git", pd.Series(None, index=finished.index))
    version = version.where(git.isna(), version + " (git " + git.astype(str) + ")")
    return version.value_counts()
