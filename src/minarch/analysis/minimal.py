"""Minimal learnable parameters P_min and the overfitting boundary P_over (docs/methods.md A.2).

Both are "from here on" boundaries along parameter count: one noisy small
model that happens to learn does not lower P_min, because every larger
architecture must qualify too. Each architecture is represented by its
chosen configuration (``architecture_table``'s ``chosen``).
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
    "best_acc",
    "p_min",
    "reached",
    "p_min_at_edge",
    "p_min_low",
    "p_min_high",
    "reached_fraction",
    "p_over",
]
_TOLERANCE = 1e-9  # stability 2/3 meets q = 0.6667 written as 2/3 rounded


def minimal_parameters(
    classified: pd.DataFrame, thresholds: AnalysisSpec | None = None
) -> pd.DataFrame:
    """Per (dataset, family): P_min with its bootstrap interval over seeds, and P_over.

    P_min is the smallest parameter count p such that every architecture with
    at least p parameters is stable in at least ``stability_q`` of its seeds
    and its mean final validation accuracy (``architecture_table``'s
    ``acc_mean``) is at least ``accuracy_fraction`` of the family's best;
    NaN with ``reached`` False when even the largest fails.
    ``p_min_at_edge`` is True when P_min is the largest size tested: only the
    grid's last architecture qualifies, so larger ones may be needed to tell
    where reliable learning starts; it is a bound, not a found minimum.
    P_over is the smallest p from which every architecture's majority regime
    is overfitting (NaN when the largest one's is not). ``best_acc`` is the
    family's best mean accuracy (a fraction).

    The interval resamples each configuration's seeds with replacement
    (``bootstrap`` times, seeded per dataset and family from
    ``bootstrap_seed``), re-judges seed disagreement on the resample, and
    recomputes P_min; its bounds are the 2.5th and 97.5th percentiles (taken
    as observed values). A resample where P_min is not reached counts as larger
    than every parameter count: a bound that lands on one is NaN (open), and
    ``reached_fraction`` says how many resamples reached P_min.
    """
    t = thresholds or AnalysisSpec()
    table = architecture_table(classified)
    rows = []
    for (dataset, family), configs in table.groupby(["dataset", "family"], sort=False):
        configs = configs.reset_index(drop=True)
        starts = architecture_starts(configs)
        params = configs["params"].to_numpy(float)[starts]
        stability, acc = configs["stability"].to_numpy(), configs["acc_mean"].to_numpy()
        p_min = _p_min(stability[None], acc[None], starts, params, t)[0]
        overfitting = (configs.loc[configs["chosen"], "regime"] == "overfitting").to_numpy()
        rng = np.random.default_rng([t.bootstrap_seed, zlib.crc32(f"{dataset}\0{family}".encode())])
        samples = _p_min(*_resampled(classified, configs, t, rng), starts, params, t)
        low, high = _percentile(samples, 2.5, "lower"), _percentile(samples, 97.5, "higher")
        rows.append(
            {
                "dataset": dataset,
                "family": family,
                "n_architectures": len(starts),
                "best_acc": np.nanmax(acc) if np.isfinite(acc).any() else np.nan,
                "p_min": p_min,
                "reached": bool(np.isfinite(p_min)),
                "p_min_at_edge": bool(p_min == params[-1]),
                "p_min_low": low,
                "p_min_high": high,
                "reached_fraction": np.isfinite(samples).mean() if len(samples) else np.nan,
                "p_over": _boundary(overfitting[None], params)[0],
            }
        )
    return pd.DataFrame(rows, columns=MINIMAL_COLUMNS)


def _p_min(
    stability: np.ndarray,
    acc: np.ndarray,
    starts: np.ndarray,
    params: np.ndarray,
    t: AnalysisSpec,
) -> np.ndarray:
    """P_min per sample from (samples x configurations) stability and mean accuracy."""
    chosen = best_configurations(acc, starts)
    chosen_acc = np.take_along_axis(acc, chosen, axis=1)
    best = np.where(np.isnan(chosen_acc), -np.inf, chosen_acc).max(axis=1, keepdims=True)
    stable = np.take_along_axis(stability, chosen, axis=1) >= t.stability_q - _TOLERANCE
    return _boundary(stable & (chosen_acc >= t.accuracy_fraction * best), params)


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
