"""Pruning sensitivity, phases and quantization robustness (docs/methods.md A.3-A.4).

Everything reads one *compression frame*: a row per (trained run, compression
setting) with the columns of ``COMPRESSION_COLUMNS``. A row's *drop* is its
uncompressed parent's final validation accuracy minus its own; accuracies are
fractions. Rows of the same model and configuration (dataset, family, model,
learning rate, weight decay) that differ only in ``seed`` are one curve's
seeds; configurations are never pooled as if they were seeds. Rows without a
finite accuracy are left out: a missing evaluation is no evidence either way.

Unstructured pruning is measured by sparsity (the fraction of prunable
weights removed); structured pruning by the fraction of FLOPs removed,
1 − ``flops_remaining``, which is what the pruner aims at (docs/methods.md B.3).
Both are called *compression* below, so one definition serves both.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from minarch.analysis.statistics import spearman
from minarch.columns import require_columns
from minarch.errors import MinarchError

if TYPE_CHECKING:
    from minarch.analysis.stored import TableInput

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
FLOAT_CASTS = ("fp16", "bf16")
REFERENCE_METHOD = "fp32"
# int8's simulated twin: 8-bit per-channel weights, 8-bit per-tensor activations
TWIN_METHOD, TWIN_BITS = "weights+acts-channel", 8
"""A quant row with this method (bits 32) is the float reference of int8 rows, not a curve point."""

MEASURES = {False: "sparsity", True: "FLOPs removed"}
"""What compression means, by whether the method is structured."""
MODEL = ["dataset", "family", "model"]
CONFIG = [*MODEL, "lr", "weight_decay"]
CURVE = [*CONFIG, "method", "pipeline"]
_ATTRS = ["depth", "params", "flops", "chance"]  # per model, carried along
_TOLERANCE = 1e-9  # a drop of 0.90 - 0.89 is 0.010000000000000009: still within 1 pp
GRID_TOLERANCE = 0.025
"""Structured FLOPs within this relative distance are one grid point (the pruner hits ±1 %)."""

CURVE_COLUMNS = [
    *MODEL,
    "depth",
    "params",
    "lr",
    "weight_decay",
    "method",
    "pipeline",
    "structured",
    "measure",
    "compression",
    "sparsity",
    "sparsity_std",
    "flops_remaining",
    "round",
    "n_seeds",
    "acc_mean",
    "acc_std",
    "drop_mean",
    "drop_std",
    "base_acc",
    "chance",
]
REDUNDANCY_COLUMNS = [
    *MODEL,
    "depth",
    "params",
    "lr",
    "weight_decay",
    "method",
    "pipeline",
    "structured",
    "measure",
    "n_seeds",
    "r_mean",
    "r_std",
    "r_min",
    "r_max",
    "sparsity_at_r",
    "n_whole_grid",
]
BOUNDARY_COLUMNS = [
    *MODEL,
    "depth",
    "params",
    "lr",
    "weight_decay",
    "method",
    "pipeline",
    "structured",
    "measure",
    "chance",
    "collapse_threshold",
    "plateau_end",
    "collapse_start",
    "n_plateau",
    "n_degradation",
    "n_collapse",
]
PHASES = ("plateau", "degradation", "collapse")
TREND_COLUMNS = [
    "dataset",
    "family",
    "method",
    "pipeline",
    "measure",
    "n_models",
    "n_depth",
    "rho_depth",
    "p_depth",
    "why_depth",
    "rho_params",
    "p_params",
    "why_params",
]
QUANT_CURVE_COLUMNS = [
    *MODEL,
    "depth",
    "params",
    "lr",
    "weight_decay",
    "method",
    "pipeline",
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
    *MODEL,
    "depth",
    "params",
    "lr",
    "weight_decay",
    "method",
    "pipeline",
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
BITS_PARAMS_COLUMNS = [
    "dataset",
    "family",
    "method",
    "pipeline",
    "n_models",
    "n_qualified",
    "rho_params",
    "p_params",
    "why_params",
]
BITS_DATASET_COLUMNS = [
    "dataset",
    "family",
    "method",
    "pipeline",
    "n_models",
    "n_qualified",
    "mean_bits",
    "median_bits",
    "max_bits",
]
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


# --- input ---------------------------------------------------------------------------------


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


# --- pruning -------------------------------------------------------------------------------


def pruning_curves(frame: pd.DataFrame) -> pd.DataFrame:
    """Accuracy and drop per grid point of each pruning curve, mean and std over seeds.

    One row per (configuration, method, pipeline, grid point). ``compression``
    is the grid point (sparsity, or FLOPs removed for structured methods);
    ``sparsity`` and ``flops_remaining`` are kept as measured (means over
    seeds). Structured FLOPs that differ by less than ``GRID_TOLERANCE``
    (relative) are one grid point, since the pruner only meets its target to
    within 1 %. Std is NaN with one seed. Sorted by configuration, method,
    pipeline, compression.
    """
    rows = _prune_points(frame)
    if rows.empty:
        return pd.DataFrame(columns=CURVE_COLUMNS)
    curves = (
        rows.groupby([*CURVE, "point"], dropna=False, sort=True)
        .agg(
            **{a: (a, "first") for a in _ATTRS},
            structured=("structured", "first"),
            compression=("compression", "mean"),
            sparsity=("sparsity", "mean"),
            sparsity_std=("sparsity", "std"),
            flops_remaining=("flops_remaining", "mean"),
            round=("round", "first"),
            n_seeds=("seed", "nunique"),
            acc_mean=("val_acc", "mean"),
            acc_std=("val_acc", "std"),
            drop_mean=("drop", "mean"),
            drop_std=("drop", "std"),
            base_acc=("base_val_acc", "mean"),
        )
        .reset_index()
    )
    curves["measure"] = curves["structured"].map(MEASURES)
    curves = curves.sort_values([*CURVE, "compression"], kind="stable", ignore_index=True)
    return curves[CURVE_COLUMNS]


def redundancy(frame: pd.DataFrame, *, delta: float = 0.01) -> pd.DataFrame:
    """R_δ per seed, summarised over seeds, per (configuration, method, pipeline).

    Read as "the largest s whose drop is at most δ", one lucky grid point past a
    collapse would count, since the drop need not grow monotonically with s.
    R_δ (docs/methods.md A.3) is therefore the *plateau edge*: the largest grid
    compression c such that every grid point of that seed's curve at or below c
    has a drop of at most δ. Compression 0 always qualifies, so R_δ = 0 when the first grid
    point already drops more than δ. For structured methods R_δ is the fraction
    of FLOPs removed and ``sparsity_at_r`` the fraction of parameters removed
    at that point (for unstructured ones the two are equal). ``n_whole_grid``
    counts seeds whose whole grid stays within δ: their R_δ is a lower bound.
    """
    rows = _prune_points(frame)
    if rows.empty:
        return pd.DataFrame(columns=REDUNDANCY_COLUMNS)
    per_point = (
        rows.groupby([*CURVE, "seed", "point"], dropna=False, sort=True)
        .agg(
            **{a: (a, "first") for a in _ATTRS},
            structured=("structured", "first"),
            compression=("compression", "mean"),
            sparsity=("sparsity", "mean"),
            drop=("drop", "mean"),
        )
        .reset_index()
    )
    seeds = []
    for _, curve in per_point.groupby([*CURVE, "seed"], dropna=False, sort=False):
        curve = curve.sort_values("compression")
        edge = _plateau_edge(curve["drop"].to_numpy(), delta)
        first = curve.iloc[0]
        seeds.append(
            {
                **first[[*CURVE, *_ATTRS, "structured"]].to_dict(),
                "r": 0.0 if edge < 0 else curve["compression"].iloc[edge],
                "s": 0.0 if edge < 0 else curve["sparsity"].iloc[edge],
                "whole": edge == len(curve) - 1,
            }
        )
    table = (
        pd.DataFrame(seeds)
        .groupby(CURVE, dropna=False, sort=True)
        .agg(
            **{a: (a, "first") for a in _ATTRS},
            structured=("structured", "first"),
            n_seeds=("r", "size"),
            r_mean=("r", "mean"),
            r_std=("r", "std"),
            r_min=("r", "min"),
            r_max=("r", "max"),
            sparsity_at_r=("s", "mean"),
            n_whole_grid=("whole", "sum"),
        )
        .reset_index()
    )
    table["measure"] = table["structured"].map(MEASURES)
    table["n_whole_grid"] = table["n_whole_grid"].astype(int)
    return table[REDUNDANCY_COLUMNS]


@dataclass(frozen=True)
class Phases:
    """Phase boundaries per curve, and every curve point with its phase."""

    boundaries: pd.DataFrame
    points: pd.DataFrame


def phases(frame: pd.DataFrame, *, delta: float = 0.01, collapse_margin: float = 0.10) -> Phases:
    """Plateau, degradation and collapse along each seed-mean pruning curve.

    Phases are contiguous ranges of compression. The plateau runs from 0 to
    ``plateau_end``, the plateau edge of the seed-mean drop (as R_δ, but on
    the mean curve, so it may differ from the mean of the per-seed R_δ).
    Collapse starts at ``collapse_start``, the smallest grid compression whose
    seed-mean accuracy is at most chance + ``collapse_margin`` × (1 − chance)
    (``collapse_threshold``), and covers every larger point even if one
    recovers; NaN when no point collapses. Everything between is degradation.
    A point that qualifies as both (a parent barely above chance) is collapse.
    """
    curves = pruning_curves(frame)
    if curves.empty:
        return Phases(
            pd.DataFrame(columns=BOUNDARY_COLUMNS), pd.DataFrame(columns=[*CURVE_COLUMNS, "phase"])
        )
    bounds, labelled = [], []
    for _, curve in curves.groupby(CURVE, dropna=False, sort=False):
        curve = curve.sort_values("compression").copy()
        chance = float(curve["chance"].iloc[0])
        threshold = chance + collapse_margin * (1 - chance)
        x = curve["compression"].to_numpy(float)
        edge = _plateau_edge(curve["drop_mean"].to_numpy(), delta)
        plateau_end = 0.0 if edge < 0 else x[edge]
        collapsed = np.flatnonzero(curve["acc_mean"].to_numpy(float) <= threshold + _TOLERANCE)
        collapse_start = x[collapsed[0]] if len(collapsed) else np.nan
        phase = np.where(np.arange(len(x)) <= edge, "plateau", "degradation")
        if len(collapsed):
            phase[collapsed[0] :] = "collapse"
        curve["phase"] = phase
        labelled.append(curve)
        first = curve.iloc[0]
        bounds.append(
            {
                **first[[c for c in BOUNDARY_COLUMNS if c in curve.columns]].to_dict(),
                "collapse_threshold": threshold,
                "plateau_end": plateau_end,
                "collapse_start": collapse_start,
                **{f"n_{p}": int((phase == p).sum()) for p in PHASES},
            }
        )
    points = pd.concat(labelled, ignore_index=True)
    return Phases(pd.DataFrame(bounds, columns=BOUNDARY_COLUMNS), points)


def redundancy_trend(redundancy_table: pd.DataFrame) -> pd.DataFrame:
    """Spearman rank correlation of mean R_δ with depth and with parameter count.

    Per (dataset, family, method, pipeline), one point per model (the mean
    over its configurations); p as ``statistics.spearman`` gives it. ρ and p
    are NaN with fewer than three models (``n_depth`` counts those with a
    depth) or when either side is constant, and ``why_depth``/``why_params``
    say which. A positive ``rho_depth`` means deeper models are more resilient.
    """
    rows = []
    keys = ["dataset", "family", "method", "pipeline"]
    for key, group in redundancy_table.groupby(keys, dropna=False, sort=True):
        models = group.groupby("model", dropna=False).agg(
            r=("r_mean", "mean"),
            depth=("depth", "first"),
            params=("params", "first"),
            measure=("measure", "first"),
        )
        with_depth = models[np.isfinite(models["depth"].astype(float))]
        by_depth = spearman(with_depth["depth"], with_depth["r"], names=("depth", "R_δ"))
        by_params = spearman(models["params"], models["r"], names=("parameter count", "R_δ"))
        rows.append(
            {
                **dict(zip(keys, key, strict=True)),
                "measure": models["measure"].iloc[0],
                "n_models": len(models),
                "n_depth": len(with_depth),
                "rho_depth": by_depth.rho,
                "p_depth": by_depth.p,
                "why_depth": by_depth.reason,
                "rho_params": by_params.rho,
                "p_params": by_params.p,
                "why_params": by_params.reason,
            }
        )
    return pd.DataFrame(rows, columns=TREND_COLUMNS)


def layer_widths(frame: pd.DataFrame) -> pd.DataFrame:
    """Kept channels per layer for each structured method and FLOPs target, mean over seeds.

    Reads the optional JSON columns ``widths`` (kept channels per layer of the
    pruned model) and ``base_widths`` (the unpruned model's). A layer's width
    may be a number or a dict holding ``out_channels`` or ``out_features``.
    One row per (dataset, family, model, layer) in the unpruned model's layer
    order, with ``base_width`` and, per (method, FLOPs remaining), the columns
    "<method> @ <FLOPs remaining %>: kept" and "...: fraction". Pipelines share
    the pruned architecture, so the first pipeline's widths stand for all.
    Empty when the columns are absent or hold nothing.
    """
    if "widths" not in frame.columns or "base_widths" not in frame.columns:
        return pd.DataFrame()
    rows = _prune_points(frame, extra=["widths", "base_widths"])
    rows = rows[rows["structured"] & rows["widths"].notna() & rows["base_widths"].notna()]
    rows = rows.drop_duplicates([*CONFIG, "method", "seed", "point"])
    if rows.empty:
        return pd.DataFrame()
    long, order = [], {}
    for row in rows.itertuples(index=False):
        base = _widths(row.base_widths)
        kept = _widths(row.widths)
        for i, layer in enumerate(base):
            order.setdefault((row.dataset, row.family, row.model, layer), i)
            if layer in kept:
                long.append(
                    {
                        **{c: getattr(row, c) for c in MODEL},
                        "layer": layer,
                        "base_width": base[layer],
                        "column": f"{row.method} @ {100 * (1 - row.point):.0f} %",
                        "target": (row.method, row.point),
                        "kept": kept[layer],
                    }
                )
    if not long:
        return pd.DataFrame()
    long = pd.DataFrame(long)
    long["fraction"] = long["kept"] / long["base_width"]
    columns = long.drop_duplicates("column").sort_values("target")["column"].tolist()
    wide = long.pivot_table(
        index=[*MODEL, "layer", "base_width"], columns="column", values=["kept", "fraction"]
    )
    keys = wide.index.to_frame(index=False)
    values = {
        f"{column}: {what}": wide[what][column].to_numpy()
        for column in columns
        for what in ("kept", "fraction")
    }
    out = pd.concat([keys, pd.DataFrame(values)], axis=1)  # at once: no fragmented frame
    out["_order"] = [order[tuple(k)] for k in out[[*MODEL, "layer"]].itertuples(index=False)]
    out = out.sort_values([*MODEL, "_order"], kind="stable", ignore_index=True)
    return out.drop(columns="_order")


# --- quantization --------------------------------------------------------------------------


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
    curves = (
        rows.groupby([*CURVE, "sparsity", "bits"], dropna=False, sort=True)
        .agg(
            **{a: (a, "first") for a in _ATTRS},
            n_seeds=("seed", "nunique"),
            acc_mean=("val_acc", "mean"),
            acc_std=("val_acc", "std"),
            drop_mean=("drop", "mean"),
            base_acc=("base_val_acc", "mean"),
        )
        .reset_index()
    )
    return curves[QUANT_CURVE_COLUMNS]


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
        edge = _plateau_edge(curve["drop_mean"].to_numpy(), delta)
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
        models = group.groupby("model", dropna=False).agg(
            bits=("min_bits", "mean"), params=("params", "first")
        )
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
    ref = rows[rows["method"] == REFERENCE_METHOD]
    mine = int8.groupby(CONFIG, dropna=False).agg(
        params=("params", "first"),
        n_seeds=("seed", "nunique"),
        acc_int8=("val_acc", "mean"),
        base=("base_val_acc", "mean"),
        size_int8=("size_bytes", "mean"),
        latency_int8=("latency_ms", "mean"),
    )
    theirs = ref.groupby(CONFIG, dropna=False).agg(
        acc_fp32=("val_acc", "mean"),
        size_fp32=("size_bytes", "mean"),
        latency_fp32=("latency_ms", "mean"),
    )
    twin = rows[(rows["method"] == TWIN_METHOD) & (rows["bits"] == TWIN_BITS)]
    simulated = twin.groupby(CONFIG, dropna=False).agg(acc_simulated=("val_acc", "mean"))
    table = mine.join(theirs, how="left").join(simulated, how="left").reset_index()
    table["acc_fp32"] = table["acc_fp32"].fillna(table["base"])
    with np.errstate(divide="ignore", invalid="ignore"):
        table["size_ratio"] = table["size_int8"] / table["size_fp32"]
        table["speedup"] = table["latency_fp32"] / table["latency_int8"]
    return table[INT8_COLUMNS]


# --- shared --------------------------------------------------------------------------------


def _prune_points(frame: pd.DataFrame, extra: Sequence[str] = ()) -> pd.DataFrame:
    """Finite prune rows with ``structured``, ``compression``, ``drop`` and a grid ``point``."""
    rows = compression_rows(frame, "prune")
    rows = rows[np.isfinite(rows["val_acc"])]
    if rows.empty:
        return rows.assign(structured=False, compression=np.nan, drop=np.nan, point=np.nan)
    structured = rows["method"].str.startswith("structured")
    remaining = rows["flops_remaining"].fillna(rows["flops_after"] / rows["flops"])
    rows = rows.assign(
        structured=structured,
        flops_remaining=remaining.where(structured),
        compression=np.where(structured, 1 - remaining, rows["sparsity"]),
        drop=rows["base_val_acc"] - rows["val_acc"],
    )
    rows = rows[np.isfinite(rows["compression"])].reset_index(drop=True)
    compression, point = rows["compression"].to_numpy(float), np.empty(len(rows))
    for at in rows.groupby(CURVE, dropna=False, sort=False).indices.values():
        structured = rows["structured"].iloc[at[0]]
        point[at] = _snap(compression[at], GRID_TOLERANCE if structured else 0.0)
    rows["point"] = point
    return rows[[*COMPRESSION_COLUMNS, *extra, "structured", "compression", "drop", "point"]]


def _quant_points(frame: pd.DataFrame) -> pd.DataFrame:
    rows = compression_rows(frame, "quant")
    rows = rows[np.isfinite(rows["val_acc"]) & (rows["method"] != REFERENCE_METHOD)]
    rows = rows[np.isfinite(rows["bits"])]
    return rows.assign(
        sparsity=rows["sparsity"].fillna(0.0), drop=rows["base_val_acc"] - rows["val_acc"]
    )


def _snap(compression: np.ndarray, relative: float) -> np.ndarray:
    """Each value's grid point: the mean of its cluster of nearby values.

    Values are clustered on what remains (1 − compression), a new cluster
    starting where one exceeds the cluster's smallest by more than
    ``relative`` of it; with 0, only equal values (to 1e-9) share a point.
    """
    remaining = 1 - compression
    order = np.argsort(remaining, kind="stable")
    cluster = np.empty(len(remaining), int)
    start, label = -np.inf, -1
    for i in order:
        if remaining[i] > start * (1 + relative) + _TOLERANCE:
            start, label = remaining[i], label + 1
        cluster[i] = label
    means = pd.Series(compression).groupby(cluster).transform("mean").to_numpy()
    return np.round(means, 9)


def _plateau_edge(drops: np.ndarray, delta: float) -> int:
    """Index of the last point of the leading run with drop ≤ δ; −1 when the first fails."""
    ok = np.logical_and.accumulate(np.asarray(drops, float) <= delta + _TOLERANCE)
    return int(np.flatnonzero(ok)[-1]) if ok.any() else -1


def _widths(text: object) -> dict[str, float]:
    """A widths JSON string as {layer: channels}."""
    try:
        value = json.loads(text) if isinstance(text, str) else text
    except json.JSONDecodeError as e:
        raise MinarchError(f"compression results: layer widths are not valid JSON: {e}") from e
    if not isinstance(value, dict):
        raise MinarchError("compression results: layer widths must be a JSON object")
    out = {}
    for layer, width in value.items():
        if isinstance(width, dict):
            width = width.get("out_channels", width.get("out_features"))
        if isinstance(width, int | float) and not isinstance(width, bool):
            out[str(layer)] = float(width)
    return out


def redundancy_table(study: TableInput) -> pd.DataFrame:
    """The ``redundancy`` table (``minarch.tables``) under the study's ``prune_delta``."""
    frame = study.compression
    return pd.DataFrame() if frame.empty else redundancy(frame, delta=study.thresholds.prune_delta)


def phases_table(study: TableInput) -> pd.DataFrame:
    """The ``phases`` table: each pruning curve's phase boundaries."""
    frame, t = study.compression, study.thresholds
    if frame.empty:
        return pd.DataFrame()
    return phases(frame, delta=t.prune_delta, collapse_margin=t.collapse_margin).boundaries


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
