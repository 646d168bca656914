"""What the pruning and quantization analyses share (docs/methods.md A.3-A.4).

Everything reads one *compression frame*: a row per (trained run, compression
setting) with the columns of ``COMPRESSION_COLUMNS``. A row's *drop* is its
uncompressed parent's final validation accuracy minus its own; accuracies are
fractions. Rows of the same model and configuration (dataset, family, model,
learning rate, weight decay) that differ only in ``seed`` are one curve's
seeds; configurations are never pooled as if they were seeds, and
``aggregate`` is the one way rows are summarised over seeds. Rows without a
finite accuracy are left out: a missing evaluation is no evidence either way.
``pruning.py`` and ``quantization.py`` hold the two analyses.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from minarch.columns import require_columns
from minarch.errors import MinarchError

COMPRESSION_COLUMNS = (
    "run_id",
    "dataset",
    "family",
    "model",
    "depth",
    "params",
    "flops",
    "seed",
    "lr",
    "weight_decay",
    "chance",
    "base_val_acc",
    "kind",
    "pipeline",
    "method",
    "sparsity",
    "flops_remaining",
    "bits",
    "round",
    "val_acc",
    "val_loss",
    "params_after",
    "flops_after",
    "latency_ms",
    "size_bytes",
)
"""The compression frame's columns; ``widths``/``base_widths`` (JSON) are optional."""

KINDS = ("prune", "quant")
PRUNE_PIPELINES = ("oneshot", "finetune", "retrain", "imp")
QUANT_PIPELINES = ("ptq", "qat", "int8")
STRUCTURED_METHODS = ("structured-uniform", "structured-global")
UNSTRUCTURED_METHODS = ("unstructured-global", "unstructured-layer")

MODEL = ["dataset", "family", "model"]
CONFIG = [*MODEL, "lr", "weight_decay"]
CURVE = [*CONFIG, "method", "pipeline"]
CURVE_HEAD = [*MODEL, "depth", "params", "lr", "weight_decay", "method", "pipeline"]
"""The first columns of every per-curve table: the curve and its model's size."""
MODEL_ATTRIBUTES = ["depth", "params", "flops", "chance"]
"""Per model: carried along by ``aggregate``."""
TOLERANCE = 1e-9  # a drop of 0.90 - 0.89 is 0.010000000000000009: still within 1 pp
SEED_SUMMARY = {
    "n_seeds": ("seed", "nunique"),
    "acc_mean": ("val_acc", "mean"),
    "acc_std": ("val_acc", "std"),
    "drop_mean": ("drop", "mean"),
    "base_acc": ("base_val_acc", "mean"),
}
"""A curve point over its seeds: how many, accuracy mean and std (NaN with one), mean drop."""


def compression_rows(frame: pd.DataFrame, kind: str | None = None) -> pd.DataFrame:
    """The validated frame (one ``kind`` only when given) with numeric columns as floats.

    Raises ``MinarchError`` naming any missing column or unknown ``kind``.
    """
    frame = require_columns(frame, list(COMPRESSION_COLUMNS), "compression results")
    unknown = sorted(set(frame["kind"].dropna().astype(str)) - set(KINDS))
    if unknown:
        raise MinarchError(
            f"compression results have unknown kind(s) {', '.join(unknown)}; "
            f"expected one of {', '.join(KINDS)}"
        )
    rows = frame if kind is None else frame[frame["kind"] == kind]
    rows = rows.reset_index(drop=True)
    numeric = ["depth", "params", "flops", "chance", "base_val_acc", "sparsity"]
    numeric += ["flops_remaining", "bits", "round", "val_acc", "flops_after"]
    numeric += ["latency_ms", "size_bytes", "lr", "weight_decay"]
    for column in numeric:
        rows[column] = pd.to_numeric(rows[column], errors="coerce").astype(float)
    for column in ["dataset", "family", "model", "method", "pipeline"]:
        rows[column] = rows[column].astype(str)
    return rows


def aggregate(rows: pd.DataFrame, keys: Sequence[str], **named: tuple[str, str]) -> pd.DataFrame:
    """One row per distinct ``keys`` (missing keys form a group; sorted), with the model
    attributes ``rows`` have carried along and each ``name=(column, function)`` of ``named``."""
    carried = {a: (a, "first") for a in MODEL_ATTRIBUTES if a in rows and a not in keys}
    grouped = rows.groupby(list(keys), dropna=False, sort=True)
    return grouped.agg(**carried, **named).reset_index()


def plateau_edge(drops: np.ndarray, delta: float) -> int:
    """Index of the last point of the leading run with drop ≤ δ; −1 when the first fails."""
    ok = np.logical_and.accumulate(np.asarray(drops, float) <= delta + TOLERANCE)
    return int(np.flatnonzero(ok)[-1]) if ok.any() else -1
