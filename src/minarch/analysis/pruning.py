"""Pruning sensitivity and phases (docs/methods.md A.3).

Unstructured pruning is measured by sparsity (the fraction of prunable
weights removed); structured pruning by the fraction of FLOPs removed,
1 − ``flops_remaining``, which is what the pruner aims at (docs/methods.md B.3).
Both are called *compression* below, so one definition serves both. The
compression frame and the seed summary are ``compression.py``'s.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from minarch.analysis.compression import (
    COMPRESSION_COLUMNS,
    CONFIG,
    CURVE,
    CURVE_HEAD,
    MODEL,
    MODEL_ATTRIBUTES,
    SEED_SUMMARY,
    TOLERANCE,
    aggregate,
    compression_rows,
    plateau_edge,
)
from minarch.analysis.statistics import spearman
from minarch.errors import MinarchError

if TYPE_CHECKING:
    from minarch.analysis.stored import TableInput

MEASURES = {False: "sparsity", True: "FLOPs removed"}
"""What compression means, by whether the method is structured."""

GRIDTOLERANCE = 0.025
"""Structured FLOPs within this relative distance are one grid point (the pruner hits ±1 %)."""

CURVE_COLUMNS = [
    *CURVE_HEAD,
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
    *CURVE_HEAD,
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
    *CURVE_HEAD,
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


def pruning_curves(frame: pd.DataFrame) -> pd.DataFrame:
    """Accuracy and drop per grid point of each pruning curve, mean and std over seeds.

    One row per (configuration, method, pipeline, grid point). ``compression``
    is the grid point (sparsity, or FLOPs removed for structured methods);
    ``sparsity`` and ``flops_remaining`` are kept as measured (means over
    seeds). Structured FLOPs that differ by less than ``GRIDTOLERANCE``
    (relative) are one grid point, since the pruner only meets its target to
    within 1 %. Std is NaN with one seed. Sorted by configuration, method,
    pipeline, compression.
    """
    rows = _prune_points(frame)
    if rows.empty:
        return pd.DataFrame(columns=CURVE_COLUMNS)
    curves = aggregate(
        rows,
        [*CURVE, "point"],
        structured=("structured", "first"),
        compression=("compression", "mean"),
        sparsity=("sparsity", "mean"),
        sparsity_std=("sparsity", "std"),
        flops_remaining=("flops_remaining", "mean"),
        round=("round", "first"),
        drop_std=("drop", "std"),
        **SEED_SUMMARY,
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
    per_point = aggregate(
        rows,
        [*CURVE, "seed", "point"],
        structured=("structured", "first"),
        compression=("compression", "mean"),
        sparsity=("sparsity", "mean"),
        drop=("drop", "mean"),
    )
    seeds = []
    for _, curve in per_point.groupby([*CURVE, "seed"], dropna=False, sort=False):
        curve = curve.sort_values("compression")
        edge = plateau_edge(curve["drop"].to_numpy(), delta)
        first = curve.iloc[0]
        seeds.append(
            {
                **first[[*CURVE, *MODEL_ATTRIBUTES, "structured"]].to_dict(),
                "r": 0.0 if edge < 0 else curve["compression"].iloc[edge],
                "s": 0.0 if edge < 0 else curve["sparsity"].iloc[edge],
                "whole": edge == len(curve) - 1,
            }
        )
    table = aggregate(
        pd.DataFrame(seeds),
        CURVE,
        structured=("structured", "first"),
        n_seeds=("r", "size"),
        r_mean=("r", "mean"),
        r_std=("r", "std"),
        r_min=("r", "min"),
        r_max=("r", "max"),
        sparsity_at_r=("s", "mean"),
        n_whole_grid=("whole", "sum"),
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
        edge = plateau_edge(curve["drop_mean"].to_numpy(), delta)
        plateau_end = 0.0 if edge < 0 else x[edge]
        collapsed = np.flatnonzero(curve["acc_mean"].to_numpy(float) <= threshold + TOLERANCE)
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
        models = aggregate(group, ["model"], r=("r_mean", "mean"), measure=("measure", "first"))
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
        point[at] = _snap(compression[at], GRIDTOLERANCE if structured else 0.0)
    rows["point"] = point
    return rows[[*COMPRESSION_COLUMNS, *extra, "structured", "compression", "drop", "point"]]


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
        if remaining[i] > start * (1 + relative) + TOLERANCE:
            start, label = remaining[i], label + 1
        cluster[i] = label
    means = pd.Series(compression).groupby(cluster).transform("mean").to_numpy()
    return np.round(means, 9)


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
