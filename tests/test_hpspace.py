"""Hyperparameter performance space (docs/methods.md B.4-B.9) against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from minarch.analysis.hpspace import (
    RISK_COLUMNS,
    ellipse,
    ellipse_columns,
    grid_extension,
    hpspace_tables,
    optimum,
    risk,
    roi,
    surface,
)
from minarch.errors import MinarchError
from minarch.reporting.prose import band, verdict
from minarch.reporting.section import ReportInput
from minarch.reporting.sections.hpspace import hyperparameter_space

EVIL = "<script>alert(1)</script>"
STEP = 0.2
PRUNED = "retrain structured-uniform 0.6"


def axis(start: float, stop: float) -> np.ndarray:
    """log10 grid values from start to stop inclusive, STEP apart."""
    return np.round(np.arange(start, stop + STEP / 2, STEP), 6)


def runs_on_grid(f, log_wds, log_lrs, *, seeds=1, noise=0.0, rng=None, **labels) -> pd.DataFrame:
    """One run per grid point and seed; ``f(log_wd, log_lr)`` is accuracy in %."""
    rows = []
    for lw in log_wds:
        for ll in log_lrs:
            for seed in range(seeds):
                acc = f(lw, ll) + (noise * rng.standard_normal() if noise else 0.0)
                rows.append(
                    {
                        "dataset": "cifar10",
                        "family": "resnet_cifar",
                        "model": "resnet56",
                        "variant": "base",
                        "lr": 10**ll,
                        "weight_decay": 10**lw,
                        "seed": seed,
                        "state": "done",
                        "final_val_acc": acc / 100,
                    }
                    | labels
                )
    return pd.DataFrame(rows)


def bowl(peak_wd: float, peak_lr: float, top: float = 93.0, k: float = 20.0):
    return lambda lw, ll: top - k * (lw - peak_wd) ** 2 - k * (ll - peak_lr) ** 2


def table(points: list[tuple[float, float, float]]) -> pd.DataFrame:
    """A surface from (log_wd, log_lr, f) triples."""
    frame = pd.DataFrame(points, columns=["log_wd", "log_lr", "f"])
    return frame.assign(f_std=np.nan, seeds=1)


# --- surface, optimum, ROI --------------------------------------------------------------


def test_surface_averages_seeds_counts_diverged_as_zero_and_skips_failed():
    runs = pd.DataFrame(
        {
            "lr": [0.1, 0.1, 0.1, 0.1, 0.01],
            "weight_decay": [1e-4] * 5,
            "state": ["done", "done", "diverged", "failed", "done"],
            "final_val_acc": [0.90, 0.96, np.nan, 0.99, 0.5],
        }
    )
    surf = surface(runs).set_index(["log_wd", "log_lr"])
    point = surf.loc[(-4.0, -1.0)]
    assert point["f"] == pytest.approx((90 + 96 + 0) / 3)
    assert point["f_std"] == pytest.approx(np.std([90, 96, 0], ddof=1))
    assert point["seeds"] == 3
    assert np.isnan(surf.loc[(-4.0, -2.0), "f_std"])  # one seed


def test_roi_includes_a_point_exactly_on_the_boundary():
    # 100 * 0.923 - 1.0 = 91.30000000000001 > 100 * 0.913 = 91.3 in floating point
    runs = pd.DataFrame(
        {
            "lr": [0.1, 0.01, 0.001],
            "weight_decay": [1e-4] * 3,
            "state": ["done"] * 3,
            "final_val_acc": [0.923, 0.913, 0.9129],
        }
    )
    surf = surface(runs)
    assert sorted(roi(surf, 1.0)["log_lr"]) == [-2.0, -1.0]
    assert sorted(roi(surf, 0.5)["log_lr"]) == [-1.0]


def test_optimum_breaks_ties_at_the_middle_of_a_plateau():
    plateau = table([(-4.0, -2.0, 90), (-3.8, -2.0, 90), (-3.6, -2.0, 90), (-3.8, -1.8, 89)])
    best = optimum(plateau)
    assert (best.log_wd, best.log_lr, best.ties) == (-3.8, -2.0, 3)


def test_optimum_breaks_equidistant_ties_by_smallest_lr_then_wd():
    two = table([(-4.0, -2.0, 90), (-3.8, -2.2, 90), (-3.8, -2.0, 80)])
    best = optimum(two)
    assert (best.log_wd, best.log_lr, best.ties) == (-3.8, -2.2, 2)
    same_lr = table([(-3.6, -2.0, 90), (-4.0, -2.0, 90)])
    assert optimum(same_lr).log_wd == -4.0
    assert optimum(table([(-4.0, -2.0, 90), (-3.8, -2.0, 80)])).ties == 1


def test_optimum_of_an_empty_surface_is_an_error():
    with pytest.raises(MinarchError, match="no finished run"):
        optimum(table([]))


# --- ellipse -----------------------------------------------------------------------------


def test_no_ellipse_below_five_points():
    four = table([(-4.0, -2.0, 90), (-3.8, -2.0, 90), (-4.0, -1.8, 90), (-3.8, -1.8, 90)])
    assert ellipse(four) is None
    assert ellipse(pd.concat([four, table([(-3.6, -1.6, 90)])])) is not None


def test_a_line_shaped_roi_has_width_zero():
    k = np.arange(5)
    points = table([(-4.0 + STEP * i, -2.0 + STEP * i, 90) for i in k])
    fit = ellipse(points, n_sde=2.0)
    # positions along the line are sqrt(2) * 0.2 * k; their variance (ddof=1) is 0.08 * var(k)
    along = 2 * STEP**2 * np.var(k, ddof=1)
    assert fit.length == pytest.approx(2 * 2 * math.sqrt(along))
    assert fit.length == pytest.approx(4 * math.sqrt(0.2))
    assert fit.width == 0.0
    assert fit.angle == pytest.approx(45.0)
    assert (fit.centre_wd, fit.centre_lr) == pytest.approx((-3.6, -1.6))


def test_ellipse_diameters_match_a_known_gaussian():
    mean, cov = np.array([-3.1, -1.5]), np.array([[0.5, 0.3], [0.3, 0.4]])
    sample = np.random.default_rng(7).multivariate_normal(mean, cov, size=20_000)
    fit = ellipse(sample, n_sde=2.0)
    small, large = np.linalg.eigvalsh(cov)
    assert fit.length == pytest.approx(4 * math.sqrt(large), rel=0.02)
    assert fit.width == pytest.approx(4 * math.sqrt(small), rel=0.02)
    assert (fit.centre_wd, fit.centre_lr) == pytest.approx(tuple(mean), abs=0.02)
    major = np.linalg.eigh(cov)[1][:, 1]
    assert fit.angle == pytest.approx(math.degrees(math.atan(major[1] / major[0])), abs=2)
    wd, lr = fit.curve()
    assert wd[0] == pytest.approx(wd[-1]) and lr[0] == pytest.approx(lr[-1])  # closed
    radius = np.hypot(wd - fit.centre_wd, lr - fit.centre_lr)
    assert radius.max() == pytest.approx(fit.length / 2, rel=1e-3)
    assert radius.min() == pytest.approx(fit.width / 2, rel=1e-3)


def test_band_names_the_thesis_diagonal_and_the_other_directions():
    # the thesis's band: the best lr falls as wd rises (a line of slope -1 in log10 units)
    diagonal = ellipse(table([(-4.0 + STEP * i, -1.0 - STEP * i, 90) for i in range(6)]))
    assert diagonal.angle == pytest.approx(-45.0)
    assert "high lr / low wd to low lr / high wd" in band(
        diagonal.length, diagonal.width, diagonal.angle
    )
    assert "rising together" in band(1.0, 0.2, 45.0)
    assert "along the wd axis" in band(1.0, 0.2, 3.0)
    assert "along the lr axis" in band(1.0, 0.2, 88.0)
    assert "no clear direction (major axis at -45°)" in band(1.0, 0.8, -45.0)
    assert "too few points" in band(math.nan, math.nan, math.nan)


# --- risk ----------------------------------------------------------------------------


def test_risk_against_hand_computation():
    pruned = table([(-4.0, -2.0, 89.0), (-3.8, -2.0, 88.5), (-4.0, -1.8, 90.0), (-3.8, -1.8, 92.0)])
    reference_roi = table([(-4.0, -2.0, 0), (-3.8, -2.0, 0), (-4.0, -1.8, 0), (-3.6, -2.0, 0)])
    r = risk(pruned, reference_roi)
    d = [3.0, 3.5, 2.0]  # 92 - f_p at the three reference points on the pruned grid
    assert sorted(r.d) == pytest.approx(sorted(d))
    assert r.d_mean == pytest.approx(8.5 / 3)
    # deviations 1/6, 2/3, -5/6 -> population variance (1 + 16 + 25) / 36 / 3 = 7 / 18
    assert r.d_std == pytest.approx(math.sqrt(7 / 18))
    assert r.dR_mean == pytest.approx(8.5 / 3 / 92)
    assert r.dR_std == pytest.approx(math.sqrt(7 / 18) / 92)
    assert (r.points, r.missing, r.best_f) == (3, 1, 92.0)


def test_the_reference_risks_at_most_half_a_point_on_itself():
    rng = np.random.default_rng(3)
    runs = runs_on_grid(
        bowl(-3.2, -1.4, k=3), axis(-4.4, -2.0), axis(-2.4, -0.4), seeds=2, noise=0.2, rng=rng
    )
    result = hpspace_tables(runs)
    own = result.risk_points[result.risk_points["variant"] == "base"]
    assert len(own) == result.ellipses.loc[0, "roi0.5_points"] > 5
    assert (own["d"] <= 0.5 + 1e-9).all() and (own["d"] >= 0).all()
    assert result.risk.loc[0, "d_mean"] <= 0.5
    assert result.risk.loc[0, "missing"] == 0


# --- grid extension ------------------------------------------------------------------


def test_grid_extension_proposes_a_row_beyond_the_touched_edge():
    runs = runs_on_grid(bowl(-4.0, -1.0), axis(-4.4, -3.6), axis(-2.4, -1.6))
    ext = grid_extension(surface(runs), x=1.0)
    assert ext["lr"] == pytest.approx([10**-1.4])
    assert ext["weight_decay"] == []
    low = runs_on_grid(bowl(-5.0, -2.0), axis(-4.4, -3.6), axis(-2.4, -1.6))
    assert grid_extension(surface(low), x=1.0)["weight_decay"] == pytest.approx([10**-4.6])
    assert grid_extension(surface(low), x=1.0, step=0.5)["weight_decay"] == pytest.approx(
        [10**-4.9]
    )


def test_grid_extension_stops_when_the_roi_is_inside():
    runs = runs_on_grid(bowl(-4.0, -2.0), axis(-4.4, -3.6), axis(-2.4, -1.6))
    assert grid_extension(surface(runs), x=1.0) == {"lr": [], "weight_decay": []}


def test_extending_the_grid_repeatedly_reaches_an_optimum_outside_it():
    f = bowl(-4.0, -1.0)
    log_wds, log_lrs = list(axis(-4.4, -3.6)), list(axis(-2.4, -1.6))
    extensions = 0
    while extensions < 10:
        ext = grid_extension(surface(runs_on_grid(f, log_wds, log_lrs)), x=1.0)
        if not ext["lr"] and not ext["weight_decay"]:
            break
        extensions += 1
        log_lrs += [round(math.log10(v), 6) for v in ext["lr"]]
        log_wds += [round(math.log10(v), 6) for v in ext["weight_decay"]]
    best = optimum(surface(runs_on_grid(f, log_wds, log_lrs)))
    assert (best.log_wd, best.log_lr) == (-4.0, -1.0)
    # -1.4, -1.2, -1.0 (the peak), -0.8 (in its 1.0-ROI, on the edge), -0.6 (outside): stop
    assert max(log_lrs) == pytest.approx(-0.6)
    assert extensions == 5
    assert len(log_wds) == 5  # the optimum's weight decay was inside all along


# --- tables and verdict ----------------------------------------------------------------


def two_variants(pruned_peak=(-2.8, -1.0), *, model="resnet56-p60", **extra) -> pd.DataFrame:
    """An unpruned and a pruned model whose bowls are the same shape, shifted."""
    grid = (axis(-4.4, -1.6), axis(-2.6, 0.0))
    base = runs_on_grid(bowl(-3.2, -1.4, k=5), *grid, base_model="resnet56", **extra)
    pruned = runs_on_grid(
        bowl(*pruned_peak, k=5), *grid, variant=PRUNED, model=model, base_model="resnet56", **extra
    )
    return pd.concat([base, pruned], ignore_index=True)


def test_tables_have_the_thesis_columns_and_the_shift_of_a_translated_surface():
    result = hpspace_tables(two_variants())
    assert list(result.ellipses.columns) == ellipse_columns((0.5, 1.0))
    assert list(result.risk.columns) == RISK_COLUMNS
    assert {"roi1.0_length", "roi0.5_centre_lr", "best_f_seed_std"} <= set(result.ellipses)
    base, pruned = result.ellipses.to_dict("records")
    assert (base["variant"], pruned["variant"]) == ("base", PRUNED)
    assert pruned["model"] == "resnet56-p60" and pruned["base_model"] == "resnet56"
    # the same bowl moved by (+0.4, +0.4): same ellipse, centre 0.4·sqrt(2) away
    assert pruned["roi1.0_length"] == pytest.approx(base["roi1.0_length"])
    assert (pruned["shift_wd"], pruned["shift_lr"]) == pytest.approx((0.4, 0.4))
    assert pruned["shift"] == pytest.approx(0.4 * math.sqrt(2))
    assert math.isnan(base["shift"])
    assert (base["optimum_moved"], pruned["optimum_moved"]) == (False, True)
    assert (base["best_log_wd"], base["best_log_lr"]) == (-3.2, -1.4)
    assert len(result.risk) == 2 and result.risk.loc[1, "d_mean"] > 0.5


def test_risk_is_taken_over_the_narrowest_of_the_studys_rois():
    """Widened ROIs (a CPU-scale study far below the thesis's accuracy) widen Θ with them."""
    thesis = hpspace_tables(two_variants())
    wide = hpspace_tables(two_variants(), rois=(2.0, 4.0))
    base = wide.ellipses.iloc[0]
    assert thesis.risk["points"].iloc[0] == thesis.ellipses["roi0.5_points"].iloc[0]
    assert wide.risk["points"].iloc[0] == base["roi2.0_points"] > thesis.risk["points"].iloc[0]
    assert wide.risk_roi == 2.0 and "2-ROI" in " ".join(wide.definitions)


def test_small_rois_give_nan_ellipses_in_the_table():
    result = hpspace_tables(two_variants(), rois=(0.05, 1.0))  # 0.05-ROI: θ* alone
    row = result.ellipses.iloc[0]
    assert row["roi0.05_points"] == 1
    assert math.isnan(row["roi0.05_length"]) and math.isnan(row["roi0.05_centre_wd"])
    assert np.isfinite(row["roi1.0_length"])


def test_a_one_step_move_is_not_a_move():
    result = hpspace_tables(two_variants(pruned_peak=(-3.0, -1.2)))
    assert not result.ellipses.loc[1, "optimum_moved"]


def test_without_base_model_variants_group_by_model():
    runs = two_variants().drop(columns="base_model")
    result = hpspace_tables(runs)
    assert len(result.ellipses) == 2
    assert result.ellipses["optimum_moved"].isna().tolist() == [False, True]
    assert list(result.risk["variant"]) == ["base"]  # the pruned one has no reference


def test_verdict_says_whether_the_optimum_moved():
    moved = verdict(hpspace_tables(two_variants()), "cifar10", "resnet56")
    assert f"For {PRUNED}, the optimum moved by more than one grid step" in moved
    assert "seed std" in moved and "d = " in moved
    assert "Direction of the 1.0-ROI: base: " in moved
    still = verdict(hpspace_tables(two_variants(pruned_peak=(-3.2, -1.4))), "cifar10", "resnet56")
    assert "did not move" in still
    with pytest.raises(MinarchError, match="resnet56 on cifar10"):
        verdict(hpspace_tables(two_variants()), "cifar100", "resnet56")


# --- report section ------------------------------------------------------------------


def test_the_section_draws_every_variant_and_escapes_names():
    runs = two_variants(model=EVIL)
    runs.loc[runs["variant"] == PRUNED, "variant"] = EVIL
    section = hyperparameter_space(ReportInput(runs=runs, epochs=pd.DataFrame()))
    slugs = [f.slug for f in section.figures]
    assert len(slugs) == 3 and len(set(slugs)) == 3  # two surfaces, one box plot
    assert all(s.startswith("hpspace-cifar10-resnet56") or "risk" in s for s in slugs)
    html = "".join(p for p in section.parts if isinstance(p, str))
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "Table 4.1" in html and "Table 4.2" in html and "moved" in html
    surface_fig = section.figures[1].figure
    assert "<script>" not in surface_fig.layout.title.text
    contour, scatter = surface_fig.data[0], surface_fig.data[1]
    assert contour.type == "contour" and scatter.type == "scatter"
    # one colour range for both variants: the top 15 % of all observations
    all_f = 100 * runs["final_val_acc"]
    assert contour.zmin == pytest.approx(np.percentile(all_f, 85))
    assert contour.zmax == pytest.approx(all_f.max())
    assert section.figures[0].figure.data[0].zmin == contour.zmin
    lines = [t for t in surface_fig.data[2:] if t.mode == "lines" and t.name]
    assert {t.line.color for t in lines} == {"black", "white"}


def test_the_section_needs_a_grid_and_variants():
    runs = two_variants()
    assert hyperparameter_space(ReportInput(runs=runs.drop(columns="variant"), epochs=None)) is None
    one_lr = runs[runs["lr"] == runs["lr"].max()]
    assert hyperparameter_space(ReportInput(runs=one_lr, epochs=None)) is None
    assert hyperparameter_space(ReportInput(runs=runs.iloc[:0], epochs=None)) is None
