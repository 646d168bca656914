"""The 2026 paper's claims (a)-(e) tested on a study's own runs (docs/methods.md A.5).

Each claim is one row: the statistic that tests it, its n, p or interval,
and a verdict. A monotone claim is Spearman's ρ within strata (so that
datasets or families that differ in level are never read as a trend,
``statistics.stratified_spearman``): *supported* when ρ has the claimed sign
at p < ``alpha`` with n ≥ ``min_trend_n``, *contradicted* when it has the
opposite sign under the same test, *inconclusive* otherwise, with what
would decide it. Claim (e) is an equivalence: families agree when the 95 %
bootstrap interval of the gap between the best and worst family's best
accuracy lies within ``family_tolerance`` on every dataset.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from minarch.analysis.difficulty import dataset_order
from minarch.analysis.pruning import redundancy
from minarch.analysis.quantization import minimal_bits
from minarch.analysis.regimes import REGIMES
from minarch.analysis.result import Analysis
from minarch.analysis.selection import ARCH, chosen_configurations, in_configurations
from minarch.analysis.statistics import Trend, stratified_spearman

if TYPE_CHECKING:
    from minarch.analysis.stored import TableInput

CLAIMS_COLUMNS = [
    "claim",
    "statement",
    "statistic",
    "value",
    "n",
    "p",
    "interval_low",
    "interval_high",
    "verdict",
    "decide",
]
VERDICTS = ("supported", "contradicted", "inconclusive")
REGIME_ORDER = {"unstable": 0, "learning": 1, "overfitting": 2}
"""The order claim (a) expects along parameter count, small to large."""
NOT_QUALIFIED = 1e9
"""Where a model no tested bit width suffices for ranks: above every width."""
STATEMENTS = {
    "a": "Three regimes follow in order along parameter count: unstable, learning, overfitting.",
    "b": "Deeper models are more resilient to pruning (R_δ against depth at matched width).",
    "c-size": "Quantization hurts models with fewer parameters more (minimal bits vs size).",
    "c-difficulty": "Quantization hurts harder datasets more (minimal bits vs difficulty).",
    "d": "P_min grows with dataset difficulty.",
    "e": "Performance is largely invariant across families (best accuracy per dataset).",
}
_SPEARMAN = "Spearman ρ within {}"


@dataclass(frozen=True)
class ClaimInput:
    """What the claims read: the A.1-A.2 analysis, the study's runs and compression results.

    ``order`` lists the datasets easy to hard (``difficulty.dataset_order``).
    """

    analysis: Analysis
    runs: pd.DataFrame
    compression: pd.DataFrame
    order: Sequence[str]


def claims(data: ClaimInput) -> pd.DataFrame:
    """One row per claim (``STATEMENTS``), in the columns of ``CLAIMS_COLUMNS``."""
    rows = [
        regimes_in_order(data),
        deeper_more_resilient(data),
        *quantization_hurts(data),
        p_min_grows(data),
        families_agree(data),
    ]
    return pd.DataFrame(rows, columns=CLAIMS_COLUMNS)


def claims_table(study: TableInput) -> pd.DataFrame:
    """The ``claims`` table (``minarch.tables``) of a stored study; empty before a run finished."""
    if study.analysis.architectures.empty:
        return pd.DataFrame(columns=CLAIMS_COLUMNS)
    order = dataset_order(study.runs, order=study.thresholds.difficulty_order)
    return claims(ClaimInput(study.analysis, study.runs, study.compression, order))


def regimes_in_order(data: ClaimInput) -> dict:
    """(a): each chosen architecture's regime rank against its size, within dataset and family."""
    archs = data.analysis.architectures
    chosen = archs[archs["chosen"]] if len(archs) else archs
    groups = [
        (g["params"], g["regime"].map(REGIME_ORDER))
        for _, g in chosen.groupby(["dataset", "family"])
    ]
    seen = set(chosen["regime"]) if len(chosen) else set()
    missing = [r for r in REGIMES if r not in seen]
    plural = "s" if len(missing) > 1 else ""
    hint = f"a budget or sizes that reach the {' and '.join(missing)} regime{plural}"
    hint = hint if missing else "more sizes"
    return _monotone("a", groups, "dataset and family", +1, data, hint=hint)


def deeper_more_resilient(data: ClaimInput) -> dict:
    """(b): R_δ against depth among models of one family and dataset that differ only in depth."""
    rows = _chosen_rows(data, "prune")
    if rows.empty:
        return _absent("b", "pruning results (a prune: section in the study)")
    table = redundancy(rows, delta=data.analysis.thresholds.prune_delta)
    table = table.merge(_widths(data.runs), on=ARCH, how="left")
    keys = ["dataset", "family", "method", "pipeline", "width"]
    table = table[np.isfinite(table["depth"].astype(float))]
    groups = [(g["depth"], g["r_mean"]) for _, g in table.groupby(keys, dropna=False)]
    hint = "models of several depths at one width"
    return _monotone("b", groups, "dataset, family, method and width", +1, data, hint=hint)


def quantization_hurts(data: ClaimInput) -> list[dict]:
    """(c): minimal bits against size within dataset, and against difficulty per model."""
    rows = _chosen_rows(data, "quant")
    if rows.empty:
        absent = "quantization results (a quantize: section in the study)"
        return [_absent("c-size", absent), _absent("c-difficulty", absent)]
    table = minimal_bits(rows, delta=data.analysis.thresholds.quant_delta)
    table = table[(table["sparsity"].fillna(0) == 0) & (table["n_bits"] >= 2)]
    table = table.assign(bits=table["min_bits"].astype(float).fillna(NOT_QUALIFIED))
    by_size = [
        (g["params"], g["bits"])
        for _, g in table.groupby(["dataset", "family", "method", "pipeline"], dropna=False)
    ]
    rank = {name: i for i, name in enumerate(data.order)}
    table = table.assign(difficulty=table["dataset"].map(rank))
    by_difficulty = [
        (g["difficulty"], g["bits"])
        for _, g in table.groupby(["family", "model", "method", "pipeline"], dropna=False)
    ]
    return [
        _monotone("c-size", by_size, "dataset, family and method", -1, data, hint="more sizes"),
        _monotone(
            "c-difficulty",
            by_difficulty,
            "model and method",
            +1,
            data,
            hint="more datasets of varied difficulty",
        ),
    ]


def p_min_grows(data: ClaimInput) -> dict:
    """(d): P_min against the datasets' difficulty rank, within family; not reached ranks last."""
    minimal = data.analysis.minimal
    rank = {name: i for i, name in enumerate(data.order)}
    groups = [
        (g["dataset"].map(rank), g["p_min"].astype(float).fillna(np.inf))
        for _, g in minimal.groupby("family")
    ]
    bounds = int((minimal["p_min_edge"] != "").sum()) if len(minimal) else 0
    hint = "more datasets of varied difficulty"
    if bounds:
        hint += f", and sizes that bracket the {bounds} P_min that are bounds"
    return _monotone("d", groups, "family", +1, data, hint=hint)


def families_agree(data: ClaimInput) -> dict:
    """(e): per dataset, the gap between the best and worst family's best accuracy, with its CI.

    Each family is its best architecture's chosen configuration; the interval
    resamples that configuration's seeds (a diverged seed at chance).
    """
    t = data.analysis.thresholds
    runs = data.analysis.runs
    archs = data.analysis.architectures
    row = {"claim": "e", "statement": STATEMENTS["e"], "n": 0, "p": math.nan}
    row["statistic"] = "largest gap between families' best accuracy (pp), 95 % bootstrap interval"
    if archs.empty or archs.groupby("dataset")["family"].nunique().max() < 2:
        return _inconclusive(row, "a second family on the same dataset")
    chosen = archs[archs["chosen"]]
    best = chosen.loc[chosen.groupby(["dataset", "family"])["acc_mean"].idxmax()]
    seeds = runs.merge(best[[*ARCH, "lr", "weight_decay"]], on=[*ARCH, "lr", "weight_decay"])
    seeds = seeds.assign(
        acc=seeds["final_val_acc"].where(seeds["state"] != "diverged", seeds["chance"])
    )
    rng = np.random.default_rng(t.bootstrap_seed)
    gaps, lows, highs = [], [], []
    for _, here in seeds.groupby("dataset"):
        per_family = [g["acc"].to_numpy(float) for _, g in here.groupby("family")]
        if len(per_family) < 2:
            continue
        means = [a.mean() for a in per_family]
        gaps.append(max(means) - min(means))
        if t.bootstrap:
            resampled = np.stack(
                [a[rng.integers(0, len(a), (t.bootstrap, len(a)))].mean(axis=1) for a in per_family]
            )
            spread = resampled.max(axis=0) - resampled.min(axis=0)
            lows.append(np.percentile(spread, 2.5))
            highs.append(np.percentile(spread, 97.5))
    worst = int(np.argmax(gaps))
    row |= {"value": 100 * gaps[worst], "n": len(gaps)}
    if not t.bootstrap:
        return _inconclusive(row, "a bootstrap interval (analysis.bootstrap > 0)")
    row |= {"interval_low": 100 * lows[worst], "interval_high": 100 * highs[worst]}
    tolerance = f"{100 * t.family_tolerance:g} pp"
    if max(highs) <= t.family_tolerance:
        return row | {"verdict": "supported", "decide": ""}
    if any(low > t.family_tolerance for low in lows):
        return row | {"verdict": "contradicted", "decide": ""}
    return _inconclusive(row, f"more seeds, to tell the gap from {tolerance} (the tolerance)")


def _monotone(
    claim: str,
    groups: list[tuple[pd.Series, pd.Series]],
    strata: str,
    sign: int,
    data: ClaimInput,
    *,
    hint: str,
) -> dict:
    """A claim that y moves with x in direction ``sign`` within every stratum."""
    t = data.analysis.thresholds
    trend = stratified_spearman(groups, names=("x", "y"))
    row = {
        "claim": claim,
        "statement": STATEMENTS[claim],
        "statistic": _SPEARMAN.format(strata),
        "value": trend.rho,
        "n": trend.n,
        "p": trend.p,
    }
    if not math.isfinite(trend.rho):
        return _inconclusive(row, f"{hint} (no stratum has 3 points that differ)")
    significant = trend.p < t.alpha and trend.n >= t.min_trend_n
    if significant:
        verdict = "supported" if np.sign(trend.rho) == sign else "contradicted"
        return row | {"verdict": verdict, "decide": ""}
    return _inconclusive(row, _decide(trend, t.min_trend_n, hint))


def _decide(trend: Trend, min_n: int, hint: str) -> str:
    if trend.n < min_n:
        return f"{hint} (n = {trend.n}, at least {min_n} needed)"
    return f"more seeds (less noise) or {hint}"


def _absent(claim: str, what: str) -> dict:
    row = {"claim": claim, "statement": STATEMENTS[claim], "statistic": "", "n": 0}
    return _inconclusive(row | {"value": math.nan, "p": math.nan}, what)


def _inconclusive(row: dict, decide: str) -> dict:
    return {**row, "verdict": "inconclusive", "decide": decide}


def _chosen_rows(data: ClaimInput, kind: str) -> pd.DataFrame:
    """The ``kind`` compression rows of each model's chosen configuration (as the report shows)."""
    frame = data.compression
    if frame is None or frame.empty:
        return pd.DataFrame()
    rows = frame[frame["kind"] == kind]
    return in_configurations(rows, chosen_configurations(data.runs))


def _widths(runs: pd.DataFrame) -> pd.DataFrame:
    """Per architecture, its size fields other than depth: models alike but for depth match."""
    fields = sorted(
        c for c in runs.columns if c.startswith("config.model.") and c != "config.model.depth"
    )
    fields = [c for c in fields if c != "config.model.family"]
    shapes = runs.drop_duplicates(ARCH)[[*ARCH, *fields]]
    # str per cell: astype(str) keeps a string-dtype column's missing values as floats
    width = shapes[fields].map(str).agg(" ".join, axis=1) if fields else ""
    return shapes[ARCH].assign(width=width)
