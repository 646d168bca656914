"""The hyperparameter performance space under pruning (docs/methods.md B.4-B.9, the 2023 thesis).

Each model variant (unpruned "base", pruned ones) is trained on a grid of
(log10 weight decay, log10 learning rate); its surface f is the seed-mean final
validation accuracy in %. From it: the best configuration θ*, the x-ROIs (all
points within x percentage points of f(θ*)), the n-SDE confidence ellipse of
each ROI (thesis Table 4.1), the risk of reusing the unpruned model's
hyperparameters on a pruned one (Table 4.2), and where the grid should grow.

A diverged run counts as accuracy 0 (it learned nothing usable), so a grid
point whose seeds all diverged has f = 0 rather than vanishing from the grid
and making its neighbourhood look better explored than it is. Failed, pending
and running runs, and done runs without a finite accuracy, are left out. A
surface whose best f is at or below chance (every run diverged, or none
learned) has no ROI: the whole grid would be "near the best" of nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from minarch.analysis.selection import chance
from minarch.columns import require_columns
from minarch.errors import MinarchError

if TYPE_CHECKING:
    from minarch.analysis.stored import TableInput

RUN_INPUT = ["dataset", "family", "model", "variant", "lr", "weight_decay", "seed", "state"]
RUN_INPUT += ["final_val_acc"]
SURFACE_INPUT = ["lr", "weight_decay", "state", "final_val_acc"]
SURFACE_COLUMNS = ["log_wd", "log_lr", "f", "f_std", "seeds"]
AXES = ["log_wd", "log_lr"]
GROUP = ["dataset", "family", "base_model"]
KEYS = [*GROUP, "variant"]
ELLIPSE_STATS = ("points", "length", "width", "angle", "centre_wd", "centre_lr")
RISK_COLUMNS = [*KEYS, "model", "d_mean", "d_std", "dR_mean", "dR_std", "points", "missing"]
RISK_POINT_COLUMNS = [*KEYS, "log_wd", "log_lr", "d", "dR"]
MIN_ELLIPSE_POINTS = 5
BAND_ELONGATION = 1.5  # length / width below which an ROI has no direction
BAND_STATS = ("length", "width", "angle")  # what roi_shape reads, with the ROI's points
DECIMALS = 6  # log10 coordinates are rounded so the same grid point compares equal
TOLERANCE = 1e-9  # accuracies (in %) this close count as equal: ties, ROI boundaries
_FLAT = 1e-12  # an eigenvalue below this fraction of the largest is a flat direction


class RoiShape(str, Enum):
    """Which way a ROI's ellipse runs in (log10 wd, log10 lr) (``roi_shape``)."""

    NONE = "none"  # no ROI: the model learned nothing (best f at or below chance)
    POINT = "point"  # the ROI's points coincide: no extent, no direction
    TOO_FEW = "too few points"  # no ellipse: under MIN_ELLIPSE_POINTS
    ROUND = "round"  # under BAND_ELONGATION times as long as wide: no direction
    DIAGONAL = "diagonal"  # the thesis's band: lr falls as wd rises
    RISING = "rising"  # lr and wd rise together
    ALONG_WD = "along wd"  # wd hardly matters, lr does
    ALONG_LR = "along lr"  # lr hardly matters, wd does


@dataclass(frozen=True)
class Optimum:
    """θ* of a surface; ``ties`` counts the points that share the best f (1 without a tie)."""

    log_wd: float
    log_lr: float
    f: float
    f_std: float
    seeds: int
    ties: int


@dataclass(frozen=True)
class Ellipse:
    """The n-SDE confidence ellipse of a ROI in (log10 wd, log10 lr).

    ``length`` and ``width`` are full diameters (2·n·sqrt(eigenvalue)) in
    log10 units; ``angle`` is the major axis's direction in degrees from the
    log10-wd axis, in (-90, 90].
    """

    centre_wd: float
    centre_lr: float
    length: float
    width: float
    angle: float
    n_sde: float
    points: int

    @classmethod
    def from_table(cls, row: Mapping[str, Any], x: float, n_sde: float) -> Ellipse | None:
        """The x-ROI's ellipse as a Table 4.1 row holds it; None where the row has none."""
        stats = {stat: float(row[roi_column(x, stat)]) for stat in ELLIPSE_STATS}
        if not all(math.isfinite(value) for value in stats.values()):
            return None
        return cls(**{**stats, "points": int(stats["points"])}, n_sde=float(n_sde))

    def curve(self, samples: int = 121) -> tuple[np.ndarray, np.ndarray]:
        """The outline as (log10 wd, log10 lr) arrays, closed, for plotting."""
        t = np.linspace(0, 2 * np.pi, samples)
        a, b = self.length / 2 * np.cos(t), self.width / 2 * np.sin(t)
        c, s = math.cos(math.radians(self.angle)), math.sin(math.radians(self.angle))
        return self.centre_wd + c * a - s * b, self.centre_lr + s * a + c * b


@dataclass(frozen=True)
class Risk:
    """What reusing the reference's 0.5-ROI costs a pruned model, in pp and relative.

    ``d`` and ``dR`` hold one value per reference ROI point that the pruned
    surface has (for box plots); ``missing`` counts the ones it lacks.
    ``dR`` is a ratio (d over f_p(θ*_p)), not a percentage.
    """

    d_mean: float
    d_std: float
    dR_mean: float
    dR_std: float
    points: int
    missing: int
    best_f: float
    d: tuple[float, ...]
    dR: tuple[float, ...]


@dataclass(frozen=True)
class HpSpaceResult:
    """Thesis Tables 4.1 (``ellipses``) and 4.2 (``risk``) and what they were computed from.

    ``surfaces`` is every variant's surface (long form, ``KEYS`` + ``model`` +
    ``SURFACE_COLUMNS``); ``risk_points`` the per-θ d and dR behind ``risk``.
    """

    ellipses: pd.DataFrame
    risk: pd.DataFrame
    risk_points: pd.DataFrame
    surfaces: pd.DataFrame
    reference: str
    rois: tuple[float, ...]
    n_sde: float
    risk_roi: float

    @property
    def definitions(self) -> tuple[str, ...]:
        return hpspace_definitions(self.rois, self.n_sde, self.risk_roi, self.reference)


def gridded(
    frame: pd.DataFrame, keys: Sequence[str], lr: str = "lr", wd: str = "weight_decay"
) -> list[tuple]:
    """The groups of ``frame`` (by ``keys``) measured on at least 2 learning rates x 2
    weight decays: the smallest grid a hyperparameter space can be read from."""
    spans = frame.groupby(list(keys), sort=True)[[lr, wd]].nunique()
    return [key for key, span in spans.iterrows() if span.min() >= 2]


def surface(runs: pd.DataFrame) -> pd.DataFrame:
    """The grid of one (dataset, model, variant): seed mean and std of accuracy (%) per point.

    Columns ``SURFACE_COLUMNS``; ``f_std`` has ddof = 1 (NaN for one seed).
    Runs with a non-positive lr or weight decay have no place on the log grid
    and are left out. Sorted by log10 wd, then log10 lr.
    """
    runs = require_columns(runs, SURFACE_INPUT, "hyperparameter-space input 'runs'")
    runs = runs[runs["state"].isin(("done", "diverged"))]
    lr, wd = runs["lr"].to_numpy(float), runs["weight_decay"].to_numpy(float)
    acc = np.where(runs["state"] == "diverged", 0.0, runs["final_val_acc"].to_numpy(float))
    keep = (lr > 0) & (wd > 0) & np.isfinite(acc)
    points = pd.DataFrame(
        {
            "log_wd": np.round(np.log10(wd[keep]), DECIMALS),
            "log_lr": np.round(np.log10(lr[keep]), DECIMALS),
            "acc": 100 * acc[keep],
        }
    )
    table = (
        points.groupby(AXES)["acc"]
        .agg(f="mean", f_std="std", seeds="count")
        .reset_index()
        .astype({"log_wd": float, "log_lr": float, "f": float, "f_std": float, "seeds": int})
    )
    return table[SURFACE_COLUMNS]


def optimum(surf: pd.DataFrame) -> Optimum:
    """θ* = argmax f, chosen the same way every time when several points tie.

    Points within ``TOLERANCE`` of the best f tie; among them θ* is the one
    nearest the ties' centroid (the middle of a plateau, not its corner), then
    the smallest log10 lr, then the smallest log10 wd.
    """
    if surf.empty or not np.isfinite(surf["f"].to_numpy(float)).any():
        raise MinarchError("the surface has no finished run: train its grid before analysing it")
    f = surf["f"].to_numpy(float)
    tied = surf[f >= np.nanmax(f) - TOLERANCE]
    xy = tied[AXES].to_numpy(float)
    distance = np.round(np.hypot(*(xy - xy.mean(axis=0)).T), 9)
    best = tied.iloc[np.lexsort((xy[:, 0], xy[:, 1], distance))[0]]
    return Optimum(
        log_wd=float(best["log_wd"]),
        log_lr=float(best["log_lr"]),
        f=float(best["f"]),
        f_std=float(best["f_std"]),
        seeds=int(best["seeds"]),
        ties=len(tied),
    )


def roi(surf: pd.DataFrame, x: float, *, chance: float = 0.0) -> pd.DataFrame:
    """The x-ROI: the surface's rows with f ≥ f(θ*) − x (x in percentage points).

    Empty when f(θ*) is at or below ``chance`` (a fraction; 0 when unknown):
    a model that learned nothing has no region of good hyperparameters.
    """
    f = surf["f"].to_numpy(float)
    if not np.isfinite(f).any() or np.nanmax(f) <= 100 * chance + TOLERANCE:
        return surf.iloc[:0]
    return surf[f >= np.nanmax(f) - x - TOLERANCE]


def ellipse(points: pd.DataFrame | np.ndarray, n_sde: float = 2.0) -> Ellipse | None:
    """The n-SDE ellipse of a bivariate Gaussian fitted to the points; None below 5 points.

    Mean and sample covariance (ddof = 1) of (log10 wd, log10 lr). Points on a
    line give width 0 (a flat direction: eigenvalues below 1e-12 of the largest,
    or negative from rounding, count as 0), not an error. Points that all
    coincide give length 0 and a NaN angle: such an ellipse has no direction.
    """
    xy = points[AXES].to_numpy(float) if isinstance(points, pd.DataFrame) else np.asarray(points)
    xy = xy.reshape(-1, 2).astype(float)
    if len(xy) < MIN_ELLIPSE_POINTS:
        return None
    eig, vec = np.linalg.eigh(np.cov(xy, rowvar=False, ddof=1))  # ascending
    eig = np.where(eig <= _FLAT * max(eig[1], 0.0), 0.0, eig)
    angle = math.degrees(math.atan2(vec[1, 1], vec[0, 1]))
    angle = angle - 180 if angle > 90 else angle + 180 if angle <= -90 else angle
    angle = angle if eig[1] > 0 else math.nan
    centre = xy.mean(axis=0)
    return Ellipse(
        centre_wd=float(centre[0]),
        centre_lr=float(centre[1]),
        length=float(2 * n_sde * math.sqrt(eig[1])),
        width=float(2 * n_sde * math.sqrt(eig[0])),
        angle=angle,
        n_sde=float(n_sde),
        points=len(xy),
    )


def risk(pruned: pd.DataFrame, reference_roi: pd.DataFrame) -> Risk:
    """The cost on ``pruned`` of each reference ROI point θ against its own θ*_p.

    d_θ = f_p(θ*_p) − f_p(θ), θ*_p being the pruned model's argmax over its
    whole grid; d^R_θ = d_θ / f_p(θ*_p). Mean and population std (ddof = 0).
    Reference points the pruned grid lacks are skipped and counted.
    """
    values = _risk_values(pruned, reference_roi)
    best = optimum(pruned).f
    d, dR = values["d"].to_numpy(float), values["dR"].to_numpy(float)
    theta = reference_roi[AXES].round(DECIMALS).drop_duplicates()
    empty = len(d) == 0
    return Risk(
        d_mean=np.nan if empty else float(d.mean()),
        d_std=np.nan if empty else float(d.std(ddof=0)),
        dR_mean=np.nan if empty else float(dR.mean()),
        dR_std=np.nan if empty else float(dR.std(ddof=0)),
        points=len(d),
        missing=len(theta) - len(d),
        best_f=best,
        d=tuple(float(v) for v in d),
        dR=tuple(float(v) for v in dR),
    )


def grid_extension(
    surf: pd.DataFrame, x: float = 1.0, step: float | None = None, *, chance: float = 0.0
) -> dict[str, list[float]]:
    """New lr and weight-decay values, one grid step beyond each edge the x-ROI touches.

    An edge is the grid's smallest or largest log10 lr (a row) or log10 wd (a
    column). ``step`` (log10 units, both axes) defaults to each axis's own
    grid spacing (its smallest gap); an axis with a single value and no
    ``step`` cannot be extended. The extended grid is the product of the old
    and new values of both axes, so a new row spans every weight decay. A
    surface without an ROI (``roi`` with ``chance``) proposes nothing.
    """
    region = roi(surf, x, chance=chance)
    out: dict[str, list[float]] = {"lr": [], "weight_decay": []}
    for key, column in (("lr", "log_lr"), ("weight_decay", "log_wd")):
        values = np.unique(surf[column].to_numpy(float))
        spacing = _step(values) if step is None else float(step)
        if len(region) == 0 or not np.isfinite(spacing):
            continue
        low, high = _touched(values, region[column].to_numpy(float))
        if low:
            out[key].append(10 ** round(values[0] - spacing, 10))
        if high:
            out[key].append(10 ** round(values[-1] + spacing, 10))
    return {key: sorted(set(new)) for key, new in out.items()}


def roi_edges(surf: pd.DataFrame, region: pd.DataFrame) -> list[str]:
    """The grid edges ``region`` lies on: "lr min", "lr max", "wd min", "wd max".

    An edge is an axis's smallest or largest value on the surface; an axis
    with a single value has none (the grid does not span it). A ROI on an edge
    is cut off by the grid, so its θ* and ellipse are bounds, not findings.
    """
    edges = []
    for name, column in (("lr", "log_lr"), ("wd", "log_wd")):
        values = np.unique(surf[column].to_numpy(float))
        if len(values) < 2 or region.empty:
            continue
        low, high = _touched(values, region[column].to_numpy(float))
        edges += [f"{name} {side}" for side, hit in (("min", low), ("max", high)) if hit]
    return edges


def _touched(values: np.ndarray, inside: np.ndarray) -> tuple[bool, bool]:
    """Whether points ``inside`` reach the smallest and the largest of an axis's ``values``."""
    low = bool((inside <= values[0] + TOLERANCE).any())
    return low, bool((inside >= values[-1] - TOLERANCE).any())


def hpspace_tables(
    runs: pd.DataFrame,
    *,
    reference: str = "base",
    rois: Sequence[float] = (0.5, 1.0),
    n_sde: float = 2.0,
    risk_roi: float | None = None,
) -> HpSpaceResult:
    """Thesis Tables 4.1 and 4.2 for every model and its variants.

    A model is (dataset, family, base model): the ``base_model`` column when
    the runs have one (missing values fall back to ``model``), else ``model``
    (so pruned variants whose ``model`` label differs from the base's are
    compared with it only through ``base_model``). The ``reference`` variant
    (unpruned) is the one every other is compared with. Shifts use the widest
    ROI in ``rois`` (1.0 by default); risk uses the reference's ``risk_roi``-ROI,
    by default its narrowest (0.5 with the thesis's widths; a study whose
    accuracy is far below the thesis's may widen both, ``analysis.roi``).
    ``learned`` is False for a variant whose best f is at or below chance: it
    has no ROI (0 points, no ellipse) and neither a shift nor a moved optimum.
    ``touches_edge`` says the widest ROI reaches the grid's border (``edges``
    names the sides, ``roi_edges``): the optimum may lie outside the grid.
    """
    rois = tuple(float(x) for x in rois)
    risk_roi = min(rois) if risk_roi is None else risk_roi
    runs = require_columns(runs, RUN_INPUT, "hyperparameter-space input 'runs'")
    base = runs["base_model"].fillna(runs["model"]) if "base_model" in runs else runs["model"]
    runs = runs.assign(base_model=base)
    surfaces, ellipse_rows, risk_rows, risk_points = [], [], [], []
    for key, group in runs.groupby(GROUP, sort=True, dropna=False):
        variants = {}
        for variant, variant_runs in group.groupby("variant", sort=True, dropna=False):
            surf = surface(variant_runs)
            if not surf.empty:
                variants[variant] = (_label(variant_runs["model"]), surf)
        order = sorted(variants, key=lambda v: (v != reference, str(v)))
        level = chance(key[0])
        rows = {v: _ellipse_row(variants[v][1], rois, n_sde, level) for v in order}
        ref_row = rows.get(reference)
        ref_surf = variants[reference][1] if reference in variants else None
        ref_roi = roi(ref_surf, risk_roi, chance=level) if ref_surf is not None else None
        for variant in order:
            model, surf = variants[variant]
            ids = dict(zip(KEYS, (*key, variant), strict=True))
            surfaces.append(surf.assign(**ids, model=model))
            row = {**ids, "model": model, **rows[variant]}
            row.update(_compare(row, ref_row, ref_surf, surf, rois, is_ref=variant == reference))
            ellipse_rows.append(row)
            if ref_roi is None:
                continue
            r = risk(surf, ref_roi)
            stats = {"d_mean": r.d_mean, "d_std": r.d_std, "dR_mean": r.dR_mean}
            stats |= {"dR_std": r.dR_std, "points": r.points, "missing": r.missing}
            risk_rows.append({**ids, "model": model, **stats})
            risk_points.append(_risk_values(surf, ref_roi).assign(**ids))
    columns = ellipse_columns(rois)
    return HpSpaceResult(
        ellipses=_frame(ellipse_rows, columns).astype({"optimum_moved": "boolean"}),
        risk=_frame(risk_rows, RISK_COLUMNS),
        risk_points=_concat(risk_points, RISK_POINT_COLUMNS),
        surfaces=_concat(surfaces, [*KEYS, "model", *SURFACE_COLUMNS]),
        reference=reference,
        rois=rois,
        n_sde=float(n_sde),
        risk_roi=float(risk_roi),
    )


def ellipses_table(study: TableInput) -> pd.DataFrame:
    """The ``ellipses`` table (``minarch.tables``): Table 4.1 of a study with a grid."""
    return _gridded_tables(study).ellipses if _has_grid(study.runs) else pd.DataFrame()


def risk_table(study: TableInput) -> pd.DataFrame:
    """The ``risk`` table: Table 4.2 of a study with a grid."""
    return _gridded_tables(study).risk if _has_grid(study.runs) else pd.DataFrame()


def _gridded_tables(study: TableInput) -> HpSpaceResult:
    t = study.thresholds
    return hpspace_tables(study.runs, rois=t.roi, n_sde=t.ellipse_sde)


def _has_grid(runs: pd.DataFrame) -> bool:
    """Whether some model finished runs at 2 or more learning rates x weight decays
    (Table 4.1 would have a row even for a single point)."""
    base = runs[(runs["variant"] == "base") & runs["state"].isin(["done", "diverged"])]
    return bool(gridded(base, ["dataset", "family", "model"]))


def roi_column(x: float, stat: str) -> str:
    """The Table 4.1 column of one ellipse statistic of the x-ROI, e.g. ``roi1.0_length``."""
    return f"roi{float(x)}_{stat}"


def ellipse_columns(rois: Sequence[float]) -> list[str]:
    """Table 4.1's columns for these ROI widths."""
    per_roi = [roi_column(x, stat) for x in rois for stat in ELLIPSE_STATS]
    best = ["best_f", "best_f_seed_std", "best_log_wd", "best_log_lr", "ties", "learned"]
    shift = ["shift_wd", "shift_lr", "shift", "optimum_moved"]
    return [*KEYS, "model", "grid_points", *best, *per_roi, "touches_edge", "edges", *shift]


def hpspace_definitions(
    rois: Sequence[float], n_sde: float, risk_roi: float, reference: str = "base"
) -> tuple[str, ...]:
    """The definitions in words, for reports: every analysis says what it used."""
    widths = ", ".join(f"{x:g}" for x in rois)
    mass = 100 * (1 - math.exp(-(n_sde**2) / 2))
    return (
        "f(θ) is the mean over seeds of the final top-1 validation accuracy (%) at "
        "θ = (log10 weight decay, log10 learning rate); a diverged run counts as 0 %, failed "
        "and unfinished runs are left out.",
        "θ* = argmax f; among tied points, the one nearest the ties' centroid, then the "
        "smallest learning rate, then the smallest weight decay.",
        f"x-ROI = {{θ : f(θ) ≥ f(θ*) − x}}, x = {widths} percentage points; a surface whose "
        "best f is at or below chance (the model learned nothing, e.g. every run diverged) "
        "has no ROI.",
        f"Each ROI of at least {MIN_ELLIPSE_POINTS} points gets the {n_sde:g}-SDE ellipse of a "
        f"Gaussian fitted to it (sample mean and covariance, ddof = 1; it holds {mass:.2f} % of "
        "the mass): length and width are its diameters 2·n·sqrt(eigenvalue), in log10 units.",
        f"Risk of not retuning: for θ in the {reference} model's {risk_roi:g}-ROI, "
        "d = f_p(θ*_p) − f_p(θ) and d^R = d / f_p(θ*_p), θ*_p the pruned model's own best "
        "configuration; mean and population std (ddof = 0).",
        "The optimum moved when θ* differs from the unpruned θ* by more than one grid step "
        "on either axis; the shift is the distance between the widest ROI's ellipse centres.",
    )


def _step(values: np.ndarray) -> float:
    """An axis's grid spacing: its smallest gap (NaN with one value)."""
    gaps = np.diff(np.unique(values))
    gaps = gaps[gaps > TOLERANCE]
    return round(float(gaps.min()), DECIMALS) if len(gaps) else np.nan


def _risk_values(pruned: pd.DataFrame, reference_roi: pd.DataFrame) -> pd.DataFrame:
    """d and dR at each reference ROI point present on the pruned grid."""
    best = optimum(pruned).f
    theta = reference_roi[AXES].round(DECIMALS).drop_duplicates()
    found = theta.merge(pruned[[*AXES, "f"]], on=AXES, how="inner")
    d = best - found["f"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        dR = d / best if best > 0 else np.full(len(d), np.nan)
    return found[AXES].assign(d=d, dR=dR)


def _ellipse_row(surf: pd.DataFrame, rois: tuple[float, ...], n_sde: float, level: float) -> dict:
    best = optimum(surf)
    row = {
        "grid_points": len(surf),
        "best_f": best.f,
        "best_f_seed_std": best.f_std,
        "best_log_wd": best.log_wd,
        "best_log_lr": best.log_lr,
        "ties": best.ties,
        "learned": best.f > 100 * level + TOLERANCE,
    }
    edges: list[str] = []
    for x in rois:
        region = roi(surf, x, chance=level)
        fit = ellipse(region, n_sde)
        row[roi_column(x, "points")] = len(region)
        for stat in ELLIPSE_STATS[1:]:
            row[roi_column(x, stat)] = getattr(fit, stat) if fit is not None else np.nan
        if x == max(rois):
            edges = roi_edges(surf, region)
    return row | {"touches_edge": bool(edges), "edges": ", ".join(edges)}


def _compare(
    row: dict,
    ref: dict | None,
    ref_surf: pd.DataFrame | None,
    surf: pd.DataFrame,
    rois: tuple[float, ...],
    *,
    is_ref: bool,
) -> dict:
    """Shift of the widest ROI's centre and whether θ* moved, against the reference."""
    out = {"shift_wd": np.nan, "shift_lr": np.nan, "shift": np.nan, "optimum_moved": None}
    if is_ref:
        return out | {"optimum_moved": False}
    if ref is None or ref_surf is None or not (row["learned"] and ref["learned"]):
        return out
    if rois:
        wide = max(rois)
        dx = row[roi_column(wide, "centre_wd")] - ref[roi_column(wide, "centre_wd")]
        dy = row[roi_column(wide, "centre_lr")] - ref[roi_column(wide, "centre_lr")]
        out.update(shift_wd=dx, shift_lr=dy, shift=float(np.hypot(dx, dy)))
    moved = []
    for axis, best in (("log_wd", "best_log_wd"), ("log_lr", "best_log_lr")):
        step = _step(ref_surf[axis].to_numpy(float))
        step = step if np.isfinite(step) else _step(surf[axis].to_numpy(float))
        delta = abs(row[best] - ref[best])
        moved.append(delta > step + TOLERANCE if np.isfinite(step) else delta > TOLERANCE)
    out["optimum_moved"] = any(moved)
    return out


def roi_shape(length: float, width: float, angle: float, *, points: int | None = None) -> RoiShape:
    """Which way a ROI's ellipse runs, from its Table 4.1 length, width, angle and points.

    The thesis's optimal band runs from high lr / low wd to low lr / high wd:
    a major axis falling with weight decay (angle between -80° and -10°). An
    ellipse less than ``BAND_ELONGATION`` times as long as wide has no
    direction to speak of, and one of length 0 (its points coincide) has no
    extent either. ``points`` 0 means there is no ROI at all (``roi``).
    """
    if points == 0:
        return RoiShape.NONE
    if length == 0:
        return RoiShape.POINT
    if not all(np.isfinite([length, width, angle])):
        return RoiShape.TOO_FEW
    if length < BAND_ELONGATION * width:
        return RoiShape.ROUND
    if -80 <= angle <= -10:
        return RoiShape.DIAGONAL
    if 10 <= angle <= 80:
        return RoiShape.RISING
    return RoiShape.ALONG_WD if abs(angle) < 10 else RoiShape.ALONG_LR


def _label(models: pd.Series) -> str:
    """A variant's architecture label; several (unexpected) are joined, not dropped."""
    return " / ".join(str(m) for m in models.drop_duplicates())


def _frame(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns)


def _concat(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]
