"""Minimal learnable parameters P_stable, P_min and the overfitting boundary P_over (A.2).

All are "from here on" boundaries along parameter count: one noisy small
model that happens to learn does not lower P_min, because every larger
architecture must qualify too. Each architecture is represented by its
chosen configuration (``architecture_table``'s ``chosen``). A boundary at
an end of the sizes tested is a bound, and its *edge* says which:
"lower" (the smallest size already qualifies: P ≤ it), "upper" (only the
largest does: P ≥ it), "not_reached" (none does: P > the largest), or ""
(bracketed by sizes that do not and do qualify).
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

from minarch.analysis.regimes import architecture_table
from minarch.analysis.selection import (
    CONFIG,
    architecture_starts,
    best_configurations,
    seed_accuracy,
)
from minarch.spec.schema import AnalysisSpec

MINIMAL_COLUMNS = [
    "dataset",
    "family",
    "n_architectures",
    "largest_params",
    "best_acc",
    "accuracy_bar",
    "bar_source",
    "p_stable",
    "p_stable_edge",
    "p_min",
    "p_min_edge",
    "p_min_low",
    "p_min_high",
    "reached_fraction",
    "p_over",
    "interleaved",
]
EDGES = ("lower", "upper", "not_reached", "")
"""A boundary's ``*_edge``: at the smallest size, at the largest, past it, or bracketed."""
BAR_SOURCES = ("target", "all families", "family")
"""Where P_min's accuracy bar came from (``bar_source``), in the order they are tried."""
_TOLERANCE = 1e-9  # stability 2/3 meets q = 0.6667 written as 2/3 rounded


def minimal_parameters(
    classified: pd.DataFrame,
    thresholds: AnalysisSpec | None = None,
    *,
    table: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per (dataset, family): P_stable, P_min with its bootstrap interval over seeds, P_over.

    P_stable is the smallest parameter count p such that every architecture
    with at least p parameters is stable in at least ``stability_q`` of its
    seeds. P_min adds that its mean final validation accuracy
    (``architecture_table``'s ``acc_mean``) reaches ``accuracy_bar``: the
    study's ``target_accuracy`` for the dataset; else ``accuracy_fraction``
    of the best accuracy ANY family reached on the dataset; or, with
    ``p_min_reference: family``, of the family's own best (``bar_source``
    says which). A boundary that is not reached is NaN; ``*_edge`` flags a
    bound (module docstring). P_over is the smallest p from which every
    architecture's majority regime is overfitting (NaN when the largest
    one's is not); ``interleaved`` is True when overfitting starts at or
    below P_min, so the regimes do not form bands. ``best_acc`` is the
    family's best mean accuracy (a fraction).

    The interval resamples each configuration's seeds with replacement
    (``bootstrap`` times, seeded per dataset and family from
    ``bootstrap_seed``), re-judges seed disagreement on the resample, and
    recomputes P_min (against a bar recomputed from the resample for the
    family's own best, held fixed otherwise); its bounds are the 2.5th and
    97.5th percentiles (taken as observed values). A resample where P_min is
    not reached counts as larger than every parameter count: a bound that
    lands on one is NaN (open), and ``reached_fraction`` says how many
    resamples reached P_min. ``table`` is ``architecture_table(classified)``, for a
    caller that has it already.
    """
    t = thresholds or AnalysisSpec()
    table = architecture_table(classified) if table is None else table
    chosen = table[table["chosen"]]
    best_of_all = chosen.groupby("dataset")["acc_mean"].max()
    rows = []
    for (dataset, family), configs in table.groupby(["dataset", "family"], sort=False):
        configs = configs.reset_index(drop=True)
        starts = architecture_starts(configs)
        params = configs["params"].to_numpy(float)[starts]
        stability, acc = configs["stability"].to_numpy(), configs["acc_mean"].to_numpy()
        best = np.nanmax(acc) if np.isfinite(acc).any() else np.nan
        source, bar = _bar(str(dataset), best, best_of_all.get(dataset, np.nan), t)
        fixed = None if source == "family" else bar
        p_min = _p_min(stability[None], acc[None], starts, params, t, fixed)[0]
        stable = stability[best_configurations(acc[None], starts)[0]] >= t.stability_q - _TOLERANCE
        p_stable = _boundary(stable[None], params)[0]
        overfitting = (configs.loc[configs["chosen"], "regime"] == "overfitting").to_numpy()
        p_over = _boundary(overfitting[None], params)[0]
        rng = np.random.default_rng([t.bootstrap_seed, zlib.crc32(f"{dataset}\0{family}".encode())])
        samples = _p_min(*_resampled(classified, configs, t, rng), starts, params, t, fixed)
        low, high = _percentile(samples, 2.5, "lower"), _percentile(samples, 97.5, "higher")
        rows.append(
            {
                "dataset": dataset,
                "family": family,
                "n_architectures": len(starts),
                "largest_params": params[-1],
                "best_acc": best,
                "accuracy_bar": bar,
                "bar_source": source,
                "p_stable": p_stable,
                "p_stable_edge": edge(p_stable, params),
                "p_min": p_min,
                "p_min_edge": edge(p_min, params),
                "p_min_low": low,
                "p_min_high": high,
                "reached_fraction": np.isfinite(samples).mean() if len(samples) else np.nan,
                "p_over": p_over,
                "interleaved": bool(np.isfinite(p_over) and not p_over > p_min),
            }
        )
    return pd.DataFrame(rows, columns=MINIMAL_COLUMNS)


def edge(value: float, params: np.ndarray) -> str:
    """Which end of the sizes tested a boundary sits at (``EDGES``); "" when bracketed."""
    if not np.isfinite(value):
        return "not_reached"
    if value == params[0]:
        return "lower"
    return "upper" if value == params[-1] else ""


def bound(value: float, edge: str, largest: float) -> str:
    """A P_stable or P_min as every table, sentence and figure writes it, its edge marked."""
    if edge == "not_reached":
        return f"not reached (> {largest:,.0f})"
    return {"lower": "≤ ", "upper": "≥ "}.get(edge, "") + f"{value:,.0f}"


def _bar(
    dataset: str, family_best: float, best_of_all: float, t: AnalysisSpec
) -> tuple[str, float]:
    """(``bar_source``, ``accuracy_bar``) of one dataset and family."""
    if dataset in t.target_accuracy:
        return "target", t.target_accuracy[dataset]
    if t.p_min_reference == "all":
        return "all families", t.accuracy_fraction * best_of_all
    return "family", t.accuracy_fraction * family_best


def _p_min(
    stability: np.ndarray,
    acc: np.ndarray,
    starts: np.ndarray,
    params: np.ndarray,
    t: AnalysisSpec,
    bar: float | None,
) -> np.ndarray:
    """P_min per sample from (samples x configurations) stability and mean accuracy.

    ``bar`` None: ``accuracy_fraction`` of each sample's own best (the family reference).
    """
    chosen = best_configurations(acc, starts)
    chosen_acc = np.take_along_axis(acc, chosen, axis=1)
    if bar is None:
        best = np.where(np.isnan(chosen_acc), -np.inf, chosen_acc).max(axis=1, keepdims=True)
        bar = t.accuracy_fraction * best
    stable = np.take_along_axis(stability, chosen, axis=1) >= t.stability_q - _TOLERANCE
    return _boundary(stable & (chosen_acc >= bar), params)


def _boundary(ok: np.ndarray, params: np.ndarray) -> np.ndarray:
    """Per row, the smallest ``params`` from which ``ok`` holds for every larger one (or NaN).

    Columns are architectures sorted by ``params``; architectures of equal size
    qualify together, so a boundary never falls between two of them.
    """
    if ok.shape[1] == 0:
        return np.full(ok.shape[0], np.nan)
    from_here_on = np.logical_and.accumulate(ok[:, ::-1], axis=1)[:, ::-1]
    candidates = from_here_on & np.r_[True, params[1:] != params[:-1]]
    return np.where(candidates.any(axis=1), params[candidates.argmax(axis=1)], np.nan)


def _resampled(
    classified: pd.DataFrame, configs: pd.DataFrame, t: AnalysisSpec, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(bootstrap x configurations) stability and mean accuracy over resampled seeds."""
    stability = np.empty((t.bootstrap, len(configs)))
    acc = np.empty((t.bootstrap, len(configs)))
    seeds = classified.merge(configs[CONFIG].reset_index(names="config"), on=CONFIG)
    for config, runs in seeds.groupby("config"):
        pick = rng.integers(0, len(runs), size=(t.bootstrap, len(runs)))
        unstable = (runs["curve_regime"] == "unstable").to_numpy()[pick]
        final = runs["final_val_acc"].to_numpy(float)[pick]
        acc_picked = seed_accuracy(runs).to_numpy(float)[pick]
        seen = np.isfinite(final)
        spread = np.where(seen, final, -np.inf).max(axis=1) - np.where(seen, final, np.inf).min(
            axis=1
        )
        stability[:, config] = np.where(spread > t.seed_spread, 0.0, 1 - unstable.mean(axis=1))
        with np.errstate(invalid="ignore"):  # no finite accuracy among the picks: NaN
            acc[:, config] = np.nansum(acc_picked, axis=1) / np.isfinite(acc_picked).sum(axis=1)
    return stability, acc


def _percentile(samples: np.ndarray, q: float, method: str) -> float:
    """A percentile of P_min samples where "not reached" (NaN) ranks above every count."""
    if len(samples) == 0:
        return np.nan
    value = np.percentile(np.where(np.isnan(samples), np.inf, samples), q, method=method)
    return float(value) if np.isfinite(value) else np.nan
