"""Trend tests behind every "rises", "falls" or "differs" (docs/methods.md A.5).

A trend is Spearman's ρ between two quantities, with its n and a two-sided
p-value: exact (every permutation) while there are at most 8! of them, so
for one group of n ≤ 8, and asymptotic otherwise. Within *strata* (models
of one family and dataset, say) ρ is computed per stratum and combined as
their n-weighted mean, and the permutations shuffle within each stratum, so
a difference between strata is never read as a trend. A trend is called a
relation only at p < ``alpha`` and n ≥ ``min_n``; otherwise it is "no
clear relation", and where no test is possible ``reason`` says why.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np

EXACT_LIMIT = math.factorial(8)
"""The most permutations enumerated for an exact p-value; beyond, the normal approximation."""
NAMES = ("x", "y")
_TOLERANCE = 1e-12  # permutations whose |ρ| equals the observed one count as extreme


class Relation(str, Enum):
    """What a trend test concluded."""

    RISES = "rises"
    FALLS = "falls"
    NONE = "none"  # tested, but not significant or too few points
    UNKNOWN = "unknown"  # no test possible: see Trend.reason


@dataclass(frozen=True)
class Trend:
    """Spearman ρ with its n and two-sided p; NaN ρ and p with a ``reason`` when untestable."""

    rho: float
    n: int
    p: float
    reason: str = ""

    def relation(self, *, alpha: float = 0.05, min_n: int = 4) -> Relation:
        """RISES/FALLS only at p < ``alpha`` with at least ``min_n`` points."""
        if not math.isfinite(self.rho):
            return Relation.UNKNOWN
        if self.p >= alpha or self.n < min_n:
            return Relation.NONE
        return Relation.RISES if self.rho > 0 else Relation.FALLS

    def evidence(self) -> str:
        """'ρ = 0.83, n = 6, p = 0.042', the numbers every trend sentence carries."""
        if not math.isfinite(self.rho):
            return f"n = {self.n}; {self.reason}"
        return f"ρ = {self.rho:.2f}, n = {self.n}, {format_p(self.p)}"


def spearman(x: Sequence[float], y: Sequence[float], *, names: tuple[str, str] = NAMES) -> Trend:
    """ρ of ``y`` against ``x`` over one group of points."""
    return stratified_spearman([(x, y)], names=names)


def stratified_spearman(
    groups: Iterable[tuple[Sequence[float], Sequence[float]]], *, names: tuple[str, str] = NAMES
) -> Trend:
    """ρ of y against x within each group, combined as the n-weighted mean, and its p.

    Groups with fewer than 3 points, or whose x or y are all equal, carry no
    rank information and are left out; when none is left the trend is
    untestable and ``reason`` names why (the real reason: all values equal,
    not "too few models", when that is what happened); ``names`` are what x
    and y are, for that reason.
    """
    kept, n_all, flat_x, flat_y, short = [], 0, 0, 0, 0
    for x, y in groups:
        x, y = np.asarray(x, float), np.asarray(y, float)
        n_all += len(x)
        if len(x) < 3:
            short += 1
        elif np.unique(x).size < 2:
            flat_x += 1
        elif np.unique(y).size < 2:
            flat_y += 1
        else:
            kept.append((_ranks(x), _ranks(y)))
    if not kept:
        return Trend(math.nan, n_all, math.nan, _reason(short, flat_x, flat_y, names))
    n = sum(len(rx) for rx, _ in kept)
    weights = np.array([len(rx) / n for rx, _ in kept])
    rho = float(sum(w * _rho(rx, ry[None])[0] for w, (rx, ry) in zip(weights, kept, strict=True)))
    if math.prod(math.factorial(len(rx)) for rx, _ in kept) <= EXACT_LIMIT:
        p = _exact_p(kept, weights, rho)
    else:  # under no relation each ρ_g has variance 1 / (n_g − 1)
        sd = math.sqrt(sum(w**2 / (len(rx) - 1) for w, (rx, _) in zip(weights, kept, strict=True)))
        p = math.erfc(abs(rho) / sd / math.sqrt(2))  # the normal's two-sided tail
    return Trend(rho, n, min(p, 1.0))


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks from 1, tied values sharing their mean rank, all NaN if one value is: SciPy's
    ``rankdata``, whose import (a second or more) would cost more than every test here."""
    if np.isnan(values).any():
        return np.full(len(values), math.nan)
    _, where, counts = np.unique(values, return_inverse=True, return_counts=True)
    return (np.cumsum(counts) - (counts - 1) / 2)[where]


def _rho(rx: np.ndarray, ry: np.ndarray) -> np.ndarray:
    """Pearson correlation of ranks ``rx`` with each row of ``ry``: Spearman's ρ, ties averaged."""
    dx = rx - rx.mean()
    dy = ry - ry.mean(axis=1, keepdims=True)
    return (dy @ dx) / np.sqrt((dx @ dx) * (dy**2).sum(axis=1))


def _exact_p(kept: list, weights: np.ndarray, rho: float) -> float:
    """Share of within-group permutations whose combined |ρ| is at least the observed one."""
    totals = np.zeros(1)
    for w, (rx, ry) in zip(weights, kept, strict=True):
        shuffled = ry[np.array(list(itertools.permutations(range(len(ry)))))]
        totals = np.add.outer(totals, w * _rho(rx, shuffled)).ravel()
    return float(np.mean(np.abs(totals) >= abs(rho) - _TOLERANCE))


def _reason(short: int, flat_x: int, flat_y: int, names: tuple[str, str]) -> str:
    if flat_x and not (short or flat_y):
        return f"all {names[0]} values are equal"
    if flat_y and not (short or flat_x):
        return f"all {names[1]} values are equal"
    if short and not (flat_x or flat_y):
        return "fewer than 3 points to rank"
    return f"every group has fewer than 3 points or equal {names[0]} or {names[1]} values"


def format_p(p: float) -> str:
    """'p = 0.017', or 'p < 0.001': a p-value as sentences and tables print it."""
    return f"p = {p:.2g}" if p >= 0.001 else "p < 0.001"
