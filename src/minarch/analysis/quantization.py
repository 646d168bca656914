"""Quantization robustness: minimal bits and real int8 (docs/methods.md A.4).

The compression frame and the seed summary are ``compression.py``'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from minarch.analysis.compression import (
    CONFIG,
    CURVE,
    CURVE_HEAD,
    MODEL,
    SEED_SUMMARY,
    aggregate,
    compression_rows,
    plateau_edge,
)
from minarch.analysis.statistics import spearman

if TYPE_CHECKING:
    from minarch.analysis.stored import TableInput

FLOAT_CASTS = ("fp16", "bf16")
REFERENCE_METHOD = "fp32"
# int8's simulated twin: 8-bit per-channel weights, 8-bit per-tensor activations
TWIN_METHOD, TWIN_BITS = "weights+acts-channel", 8
"""A quant row with this method (bits 32) is the float reference of int8 rows, not a curve point."""


QUANT_CURVE_COLUMNS = [
    *CURVE_HEAD,
    "sparsity",
    "bits",
    "n_seeds",
    "acc_mean",
    "acc_std",
    "drop_mean",
    "base_acc",
    "chance",
]
MIN_BITS_COLUMNS = [
    *CURVE_HEAD,
    "sparsity",
    "n_seeds",
    "n_bits",
    "bits_tested",
    "min_bits",
    "qualifies",
    "acc_at_min",
    "drop_at_min",
    "base_acc",
]
_BITS_GROUP = ["dataset", "family", "method", "pipeline", "n_models", "n_qualified"]
"""The opening columns of both minimal-bits trend tables: the group and its counts."""
BITS_PARAMS_COLUMNS = [*_BITS_GROUP, "rho_params", "p_params", "why_params"]
BITS_DATASET_COLUMNS = [*_BITS_GROUP, "mean_bits", "median_bits", "max_bits"]
INT8_COLUMNS = [
    *MODEL,
    "params",
    "lr",
    "weight_decay",
    "n_seeds",
    "acc_fp32",
    "acc_int8",
    "acc_simulated",
    "size_fp32",
    "size_int8",
    "size_ratio",
    "latency_fp32",
    "latency_int8",
    "speedup",
]


def quantization_curves(frame: pd.DataFrame) -> pd.DataFrame:
    """Accuracy per bit width, mean and std over seeds, per curve and sparsity.

    A curve is (configuration, method, pipeline); ``sparsity`` is 0 for pure
    quantization (NaN in the input); above 0 the row was pruned first (the
    combined view). The float reference rows (method ``REFERENCE_METHOD``)
    are not curve points.
    """
    rows = _quant_points(frame)
    if rows.empty:
        return pd.DataFrame(columns=QUANT_CURVE_COLUMNS)
    return aggregate(rows, [*CURVE, "sparsity", "bits"], **SEED_SUMMARY)[QUANT_CURVE_COLUMNS]


def minimal_bits(frame: pd.DataFrame, *, delta: float = 0.01) -> pd.DataFrame:
    """The fewest bits that keep the seed-mean drop within δ, from there on up.

    Per (configuration, method, pipeline, sparsity): ``min_bits`` is the
    smallest tested width b whose seed-mean drop is at most δ *and* every
    larger tested width's is too, so a lucky 3-bit point under a failing 4-bit
    one does not count. NaN (``qualifies`` False) when even the widest tested
    fails. The drop is measured against the unpruned float parent
    (``base_acc``), so for a pruned-then-quantized model it includes the
    pruning's own cost. ``bits_tested`` lists the widths, widest first, and
    ``n_bits`` counts them (1 for a cast or real int8).
    """
    curves = quantization_curves(frame)
    rows = []
    keys = [*CURVE, "sparsity"]
    for _, curve in curves.groupby(keys, dropna=False, sort=True):
        curve = curve.sort_values("bits", ascending=False)
        edge = plateau_edge(curve["drop_mean"].to_numpy(), delta)
        first = curve.iloc[0]
        at = curve.iloc[edge] if edge >= 0 else None
        rows.append(
            {
                **first[[*keys, "depth", "params"]].to_dict(),
                "n_seeds": int(curve["n_seeds"].max()),
                "n_bits": len(curve),
                "bits_tested": ", ".join(f"{b:g}" for b in curve["bits"]),
                "min_bits": at["bits"] if at is not None else np.nan,
                "qualifies": at is not None,
                "acc_at_min": at["acc_mean"] if at is not None else np.nan,
                "drop_at_min": at["drop_mean"] if at is not None else np.nan,
                "base_acc": curve["base_acc"].mean(),
            }
        )
    return pd.DataFrame(rows, columns=MIN_BITS_COLUMNS)


@dataclass(frozen=True)
class BitsTrend:
    """Minimal bits against parameter count, and per dataset from easy to hard."""

    by_params: pd.DataFrame
    by_dataset: pd.DataFrame


def bits_trend(min_bits_table: pd.DataFrame) -> BitsTrend:
    """How the minimal bit width depends on model size and on the dataset.

    Only pure quantization (sparsity 0) by methods tested at two or more
    widths: a cast's single width says nothing about a trend. ``by_params``: per (dataset, family,
    method, pipeline) the Spearman ρ of minimal bits against parameter count
    over models; a model where no tested width qualifies ranks above every
    width (it needs more bits than any tested). NaN with fewer than three
    models or a constant side. A negative ρ means larger models tolerate fewer
    bits. ``by_dataset``: per (dataset, family, method, pipeline) the mean,
    median and largest minimal bits over the models that qualify.
    """
    pure = min_bits_table["sparsity"].fillna(0) == 0
    table = min_bits_table[pure & (min_bits_table["n_bits"] >= 2)]
    keys = ["dataset", "family", "method", "pipeline"]
    by_params, by_dataset = [], []
    for key, group in table.groupby(keys, dropna=False, sort=True):
        models = aggregate(group, ["model"], bits=("min_bits", "mean"))
        ranked = models["bits"].fillna(1e9)  # not reached: above every width
        trend = spearman(models["params"], ranked, names=("parameter count", "minimal bits"))
        qualified = models["bits"].dropna()
        common = {
            **dict(zip(keys, key, strict=True)),
            "n_models": len(models),
            "n_qualified": len(qualified),
        }
        by_params.append(
            {**common, "rho_params": trend.rho, "p_params": trend.p, "why_params": trend.reason}
        )
        by_dataset.append(
            {
                **common,
                "mean_bits": qualified.mean() if len(qualified) else np.nan,
                "median_bits": qualified.median() if len(qualified) else np.nan,
                "max_bits": qualified.max() if len(qualified) else np.nan,
            }
        )
    return BitsTrend(
        pd.DataFrame(by_params, columns=BITS_PARAMS_COLUMNS),
        pd.DataFrame(by_dataset, columns=BITS_DATASET_COLUMNS),
    )


def int8_comparison(frame: pd.DataFrame) -> pd.DataFrame:
    """Real int8 models against their float reference: accuracy, size and latency.

    The int8 rows are quant rows with method "int8"; the reference, when
    present, a quant row of the same run with method ``REFERENCE_METHOD``
    (without one, the reference accuracy is the parent's and size and latency
    stay NaN). ``acc_simulated`` is the simulated twin's (8-bit weights and
    activations), which real int8 should match. Means over seeds;
    ``size_ratio`` is int8 / fp32 and ``speedup`` fp32 latency / int8 latency.
    """
    rows = compression_rows(frame, "quant")
    int8 = rows[rows["method"] == "int8"]
    if int8.empty:
        return pd.DataFrame(columns=INT8_COLUMNS)
    mine = aggregate(
        int8,
        CONFIG,
        n_seeds=("seed", "nunique"),
        acc_int8=("val_acc", "mean"),
        base=("base_val_acc", "mean"),
        size_int8=("size_bytes", "mean"),
        latency_int8=("latency_ms", "mean"),
    )
    ref = rows[rows["method"] == REFERENCE_METHOD][[*CONFIG, "val_acc", "size_bytes", "latency_ms"]]
    theirs = aggregate(
        ref,
        CONFIG,
        acc_fp32=("val_acc", "mean"),
        size_fp32=("size_bytes", "mean"),
        latency_fp32=("latency_ms", "mean"),
    )
    twin = rows[(rows["method"] == TWIN_METHOD) & (rows["bits"] == TWIN_BITS)]
    simulated = aggregate(twin[[*CONFIG, "val_acc"]], CONFIG, acc_simulated=("val_acc", "mean"))
    table = mine.merge(theirs, on=CONFIG, how="left").merge(simulated, on=CONFIG, how="left")
    table["acc_fp32"] = table["acc_fp32"].fillna(table["base"])
    with np.errstate(divide="ignore", invalid="ignore"):
        table["size_ratio"] = table["size_int8"] / table["size_fp32"]
        table["speedup"] = table["latency_fp32"] / table["latency_int8"]
    return table[INT8_COLUMNS]


def _quant_points(frame: pd.DataFrame) -> pd.DataFrame:
    rows = compression_rows(frame, "quant")
    rows = rows[np.isfinite(rows["val_acc"]) & (rows["method"] != REFERENCE_METHOD)]
    rows = rows[np.isfinite(rows["bits"])]
    return rows.assign(
        sparsity=rows["sparsity"].fillna(0.0), drop=rows["base_val_acc"] - rows["val_acc"]
    )


def min_bits_table(study: TableInput) -> pd.DataFrame:
    """The ``min-bits`` table under the study's ``quant_delta``."""
    frame = study.compression
    return (
        pd.DataFrame() if frame.empty else minimal_bits(frame, delta=study.thresholds.quant_delta)
    )


def int8_table(study: TableInput) -> pd.DataFrame:
    """The ``int8`` table: real int8 models against fp32."""
    frame = study.compression
    return pd.DataFrame() if frame.empty else int8_comparison(frame)
