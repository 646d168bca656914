"""The analyses' tables and typed verdicts in plain sentences, for the report's sections.

The analysis package decides (a trend rises, a ROI runs diagonally, θ*
moved); this module only words what it decided.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from minarch.analysis.difficulty import in_order
from minarch.analysis.hpspace import (
    BAND_STATS,
    KEYS,
    HpSpaceResult,
    RoiShape,
    roi_column,
    roi_shape,
)
from minarch.analysis.quantization import BitsTrend
from minarch.analysis.statistics import Relation, Trend
from minarch.errors import MinarchError
from minarch.reporting.style import dataset_title, number
from minarch.spec.schema import AnalysisSpec

_VERBS = {Relation.RISES: "rises with", Relation.FALLS: "falls with"}


def describe_redundancy_trend(trend: pd.DataFrame, t: AnalysisSpec) -> list[str]:
    """One plain sentence per trend row, saying how R_δ moves with depth and size."""
    sentences = []
    for row in trend.itertuples(index=False):
        head = (
            f"{row.family} on {dataset_title(row.dataset)}, {row.method} ({row.pipeline}): "
            f"R_δ (δ = {100 * t.prune_delta:g} pp, {row.measure})"
        )
        depth = relation_words(
            "depth", Trend(row.rho_depth, row.n_depth, row.p_depth, row.why_depth), t
        )
        size = relation_words(
            "parameter count", Trend(row.rho_params, row.n_models, row.p_params, row.why_params), t
        )
        sentences.append(f"{head} {depth}, and {size}.")
    return sentences


def describe_bits_trend(trend: BitsTrend, order: Sequence[str], t: AnalysisSpec) -> list[str]:
    """Plain sentences: minimal bits against size, and along the datasets easy to hard."""
    sentences = []
    for row in trend.by_params.itertuples(index=False):
        found = Trend(row.rho_params, row.n_models, row.p_params, row.why_params)
        sentences.append(
            f"{row.family} on {dataset_title(row.dataset)}, {row.method} ({row.pipeline}): "
            f"the minimal bit width {relation_words('parameter count', found, t)}."
        )
    table = trend.by_dataset
    for (family, method, pipeline), group in table.groupby(
        ["family", "method", "pipeline"], sort=True
    ):
        group = group[np.isfinite(group["mean_bits"].astype(float))].set_index("dataset")
        if len(group) < 2:
            continue
        steps = " → ".join(
            f"{dataset_title(d)} {group.loc[d, 'mean_bits']:.1f}"
            for d in in_order(group.index, order)
        )
        sentences.append(
            f"{family}, {method} ({pipeline}): mean minimal bits from easy to hard: {steps}."
        )
    return sentences


def relation_words(what: str, trend: Trend, t: AnalysisSpec) -> str:
    """'rises with depth (ρ = 0.94, n = 6, p = 0.005)', or why no relation can be claimed."""
    found = trend.relation(alpha=t.alpha, min_n=t.min_trend_n)
    if found is Relation.UNKNOWN:
        return f"cannot be related to {what} ({trend.evidence()})"
    if found is Relation.NONE:
        return f"shows no clear relation with {what} ({trend.evidence()})"
    return f"{_VERBS[found]} {what} ({trend.evidence()})"


def band(length: float, width: float, angle: float, *, points: int | None = None) -> str:
    """Which way a ROI's ellipse runs in (log10 wd, log10 lr), in words (``roi_shape``)."""
    shape = roi_shape(length, width, angle, points=points)
    if shape is RoiShape.NONE:
        return "no ROI: the model learned nothing on this grid (best f at or below chance)"
    if shape is RoiShape.POINT:
        return "no ROI to speak of: its points coincide, so it has neither extent nor direction"
    if shape is RoiShape.TOO_FEW:
        return "too few points for an ellipse"
    if shape is RoiShape.ROUND:
        return (
            f"nearly round (length {length:.2f} vs width {width:.2f}), no clear direction "
            f"(major axis at {angle:.0f}°)"
        )
    words = {
        RoiShape.DIAGONAL: "a diagonal band from high lr / low wd to low lr / high wd",
        RoiShape.RISING: "a band with lr and wd rising together",
        RoiShape.ALONG_WD: "a band along the wd axis: wd hardly matters, lr does",
        RoiShape.ALONG_LR: "a band along the lr axis: lr hardly matters, wd does",
    }
    return f"{words[shape]} ({angle:.0f}°)"


def verdict(result: HpSpaceResult, dataset: str, base_model: str) -> str:
    """One plain-text paragraph per model: did θ* move, and what does not retuning cost.

    Each variant's risk is set against the seed std of f at its θ*, so a
    reader can tell a shift worth retuning for from seed noise.
    """
    table = result.ellipses
    rows = table[(table["dataset"] == dataset) & (table["base_model"] == base_model)]
    if rows.empty:
        pairs = table[["dataset", "base_model"]].drop_duplicates().itertuples(index=False)
        known = ", ".join(sorted(f"{m} on {d}" for d, m in pairs))
        raise MinarchError(
            f"no hyperparameter space for {base_model} on {dataset}; known: {known or 'none'}"
        )
    several = rows["family"].nunique(dropna=False) > 1  # usually one: then it adds nothing
    paragraphs = []
    for family, family_rows in rows.groupby("family", sort=True, dropna=False):
        name = f"{base_model} ({family})" if several else str(base_model)
        paragraphs.append(_verdict(result, family_rows, f"{name} on {dataset_title(dataset)}"))
    return " ".join(paragraphs)


def _verdict(result: HpSpaceResult, rows: pd.DataFrame, head: str) -> str:
    """The verdict for one model's rows of Table 4.1."""
    ref_name = result.reference
    ref = rows[rows["variant"] == ref_name]
    if ref.empty:
        return f"{head}: no '{ref_name}' variant was trained, so there is nothing to compare with."
    r = ref.iloc[0]
    if not r.learned:
        sentences = [
            f"{head}: the {ref_name} model learned nothing on this grid (best f = "
            f"{r.best_f:.2f} %, at or below chance), so there is no ROI and no θ* to reuse."
        ]
    else:
        sentences = [
            f"{head}: the {ref_name} model's best configuration θ* is at "
            f"{_theta(r.best_log_lr, r.best_log_wd)}, with f = {r.best_f:.2f} % "
            f"({_spread(r.best_f_seed_std)} at θ*)."
        ]
    if result.rois:
        wide = max(result.rois)
        shape = [
            f"{row['variant']}: "
            + band(
                *(row[roi_column(wide, s)] for s in BAND_STATS),
                points=row[roi_column(wide, "points")],
            )
            for _, row in rows.iterrows()
        ]
        sentences.append(f"Direction of the {wide:.1f}-ROI: " + "; ".join(shape) + ".")
    risk = result.risk
    for row in rows[rows["variant"] != ref_name].itertuples(index=False):
        if not (row.learned and r.learned):
            what = "it learned nothing" if not row.learned else f"the {ref_name} model did not"
            sentences.append(
                f"For {row.variant} (best f = {row.best_f:.2f} %), {what}: there is no ROI "
                "to compare."
            )
            continue
        moved = "moved" if row.optimum_moved else "did not move"
        text = (
            f"For {row.variant}, the optimum {moved} by more than one grid step (θ* at "
            f"{_theta(row.best_log_lr, row.best_log_wd)}, f = "
            f"{row.best_f:.2f} %, {_spread(row.best_f_seed_std)})"
        )
        same = risk[KEYS].eq([row.dataset, row.family, row.base_model, row.variant]).all(axis=1)
        found = risk[same & (risk["points"] > 0)]
        if len(found):
            rk = found.iloc[0]
            noise = _noise(rk["d_mean"], row.best_f_seed_std)
            text += (
                f"; reusing the {ref_name} model's hyperparameters ({result.risk_roi:g}-ROI, "
                f"{int(rk['points'])} points) costs on average d = {rk['d_mean']:.2f} ± "
                f"{rk['d_std']:.2f} pp ({100 * rk['dR_mean']:.2f} % relative){noise}"
            )
        sentences.append(text + ".")
    if len(sentences) == 1:
        sentences.append("No pruned variant was trained on this grid.")
    return " ".join(sentences)


def _theta(log_lr: float, log_wd: float) -> str:
    return f"lr {number(10**log_lr)}, weight decay {number(10**log_wd)}"


def _spread(std: float) -> str:
    return f"seed std {std:.2f} pp" if np.isfinite(std) else "seed std unknown, one seed"


def _noise(d_mean: float, std: float) -> str:
    if not (np.isfinite(d_mean) and np.isfinite(std)):
        return ""
    if d_mean > std:
        return f", more than the seed std of f at its θ* ({std:.2f} pp)"
    return f", within the seed std of f at its θ* ({std:.2f} pp), so possibly noise"
