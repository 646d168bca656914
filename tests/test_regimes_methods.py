"""docs/methods.md A.1-A.2 as revised (issue 15): each rule against the case that broke it."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import minarch
from minarch.analysis import AnalysisSpec, analyze, classify_runs
from minarch.analysis.hpspace import ellipse, grid_extension, hpspace_tables, surface
from minarch.reporting import ReportInput
from minarch.reporting.sections.hpspace import hyperparameter_space
from minarch.reporting.sections.regimes import convergence_regimes
from minarch.reporting.sections.summary import summary_tables
from minarch.spec import parse_study
from tests.test_analysis import EPOCHS, run_frames
from tests.test_hpspace import axis, runs_on_grid

QUICK = AnalysisSpec(bootstrap=0)
STUDIES = Path(__file__).resolve().parents[1] / "studies"


def regimes(specs, epochs_of=lambda epochs: epochs):
    runs, epochs = run_frames(specs)
    return classify_runs(runs, epochs_of(epochs)).set_index("run_id")


# --- 1. only base runs --------------------------------------------------------------


def test_derived_runs_enter_neither_the_regimes_nor_the_summary():
    base = [({"seed": s, "variant": "base"}, {}) for s in (0, 1)]
    stuck = {"train_loss": np.full(EPOCHS, 2.3), "val_acc": np.full(EPOCHS, 0.5)}
    derived = [  # each reuses its parent's model label and seed
        ({"seed": s, "variant": "finetune unstructured-global 0.9", "lr": 1e-4}, stuck)
        for s in (0, 1)
    ]
    derived += [({"seed": s, "variant": "imp unstructured-global 0.5"}, {}) for s in (0, 1)]
    derived += [
        ({"seed": s, "variant": "retrain structured-global 0.6", "params": 60}, {}) for s in (0, 1)
    ]
    runs, epochs = run_frames(base + derived)
    runs["parent_id"] = np.where(runs["variant"] == "base", None, "r0")
    result = analyze(runs, epochs, QUICK)
    assert set(result.runs["run_id"]) == {"r0", "r1"}
    assert result.architectures[["params", "lr", "n_seeds"]].values.tolist() == [[100, 1e-3, 2]]
    assert result.minimal["p_min"].tolist() == [100]
    html = "".join(summary_tables(ReportInput(runs, epochs)).parts)
    (row,) = re.findall(r"<tr><td>mlp w8</td>(.*?)</tr>", html)
    cells = re.findall(r"<td>(.*?)</td>", row)
    assert (cells[1], cells[5]) == ("100", "2 (2)")  # parameters, seeds (done)


# --- 2. a diverged seed counts at chance in the representative's mean -----------------


def test_a_learning_rate_most_seeds_diverge_on_never_represents_the_architecture():
    survivor = {"val_acc": np.linspace(0.3, 0.926, EPOCHS)}
    steady = {"val_acc": np.linspace(0.3, 0.896, EPOCHS)}
    specs = [({"params": 1000, "model": "m1k", "lr": 1e-2, "seed": 0}, survivor)]
    specs += [
        ({"params": 1000, "model": "m1k", "lr": 1e-2, "seed": s, "state": "diverged"}, {})
        for s in (1, 2)
    ]
    specs += [({"params": 1000, "model": "m1k", "lr": 1e-3, "seed": s}, steady) for s in range(3)]
    specs += [
        ({"params": 5000, "model": "m5k", "seed": s}, {"val_acc": np.linspace(0.3, 0.93, EPOCHS)})
        for s in range(3)
    ]
    runs, epochs = run_frames(specs)
    diverged_early = runs.loc[runs["state"] == "diverged", "run_id"]
    result = analyze(runs, epochs[~epochs["run_id"].isin(diverged_early)], QUICK)
    archs = result.architectures
    chosen = archs[archs["chosen"]].set_index("params")
    assert chosen.loc[1000, "lr"] == 1e-3
    assert chosen.loc[1000, "acc_mean"] == pytest.approx(0.896)
    lr_2 = archs[(archs["params"] == 1000) & (archs["lr"] == 1e-2)].iloc[0]
    assert lr_2["acc_mean"] == pytest.approx((0.926 + 0.1 + 0.1) / 3)  # diverged at chance
    assert result.minimal.loc[0, "p_min"] == 1000


# --- 3. when a seed diverges does not change the verdict ------------------------------


def test_a_seed_that_diverged_late_or_early_counts_the_same():
    done = [({"seed": s}, {}) for s in (0, 1)]
    late = np.r_[np.linspace(2.3, 1.0, EPOCHS - 1), np.inf]
    late_acc = np.linspace(0.3, 0.6, EPOCHS)  # its last epoch still recorded an accuracy
    specs = [*done, ({"seed": 2, "state": "diverged"}, {"train_loss": late, "val_acc": late_acc})]
    after_epoch_one = regimes(specs)
    in_epoch_one = regimes(specs, lambda epochs: epochs[epochs["run_id"] != "r2"])
    assert after_epoch_one["rule"].tolist() == in_epoch_one["rule"].tolist()
    assert in_epoch_one["rule"].tolist() == ["seed disagreement"] * 2 + ["divergence"]
    assert in_epoch_one.loc["r0", "seed_spread"] == pytest.approx(0.9 - 0.1)


# --- 4. "no progress" against ln C, never the first epoch -----------------------------


def test_no_progress_is_judged_against_the_loss_of_a_uniform_guess():
    one_epoch = {"train_loss": [0.5], "val_loss": [0.55], "train_acc": [0.85], "val_acc": [0.84]}
    fine_tune = {
        "train_loss": [0.52, 0.50, 0.49],
        "val_loss": [0.50, 0.49, 0.48],
        "train_acc": [0.88, 0.88, 0.89],
        "val_acc": [0.88, 0.88, 0.88],
    }
    stuck = {"train_loss": np.linspace(2.3, 2.1, EPOCHS)}  # above 0.9 ln 10 = 2.07
    stuck["val_acc"] = np.full(EPOCHS, 0.15)  # and validation within the chance margin
    verdicts = regimes([({}, one_epoch), ({"lr": 0.1}, fine_tune), ({"lr": 1.0}, stuck)])
    assert verdicts["rule"].tolist() == ["none", "none", "no progress"]
    assert verdicts.loc["r0", "initial_loss"] == math.log(10)


# --- 5. overfitting needs more than a rising validation loss --------------------------


def test_a_rising_validation_loss_at_the_best_accuracy_is_not_overfitting():
    drift = {  # an MNIST-1D CNN: 98.2 % validation accuracy at its best, 1.8 pp gap
        "train_loss": np.geomspace(2.0, 0.01, EPOCHS),
        "val_loss": np.r_[np.linspace(2.0, 0.06, 4), np.linspace(0.065, 0.075, EPOCHS - 4)],
        "train_acc": np.linspace(0.5, 1.0, EPOCHS),
        "val_acc": np.linspace(0.5, 0.982, EPOCHS),
    }
    declined = {**drift, "val_acc": np.r_[np.linspace(0.5, 0.982, EPOCHS - 1), 0.97]}
    gap = {**drift, "val_acc": np.linspace(0.5, 0.89, EPOCHS)}
    verdicts = regimes([({}, drift), ({"lr": 0.1}, declined), ({"lr": 1.0}, gap)])
    assert verdicts["rule"].tolist() == ["none", "rising validation loss", "train-validation gap"]
    sizes = [
        ({"params": p, "model": f"m{p}", "seed": s}, drift) for p in (100, 1000) for s in (0, 1)
    ]
    result = analyze(*run_frames(sizes), QUICK)
    assert set(result.architectures["regime"]) == {"learning"}
    assert np.isnan(result.minimal.loc[0, "p_over"])


# --- 6. no ROI on a surface that learned nothing --------------------------------------


def test_an_all_diverged_surface_has_no_roi_and_says_so():
    runs = runs_on_grid(lambda lw, ll: 0.0, axis(-4.4, -3.6), axis(-2.4, -1.6), state="diverged")
    runs["final_val_acc"] = np.nan
    result = hpspace_tables(runs)
    (row,) = result.ellipses.to_dict("records")
    assert row["roi1.0_points"] == row["roi0.5_points"] == 0  # not the whole 5 x 5 grid
    assert math.isnan(row["roi1.0_length"]) and math.isnan(row["roi1.0_width"])
    assert grid_extension(surface(runs), x=1.0) == {"lr": [], "weight_decay": []}
    html = "".join(
        p
        for p in hyperparameter_space(ReportInput(runs, pd.DataFrame())).parts
        if isinstance(p, str)
    )
    assert "learned nothing" in html and "no ROI" in html and "nearly round" not in html


def test_an_roi_of_coincident_points_has_no_direction():
    from minarch.reporting.prose import band

    fit = ellipse(np.tile([-4.0, -2.0], (5, 1)))
    assert fit.length == fit.width == 0 and math.isnan(fit.angle)
    words = band(fit.length, fit.width, fit.angle)
    assert "no ROI" in words and "band" not in words


# --- 8. selection on the test split is optimistic and says so ---------------------------


def test_selection_on_the_test_split_is_flagged_by_the_table():
    specs = [
        ({"dataset": d, "config.dataset.validation": split, "seed": s}, {})
        for d, split in (("digits", "test"), ("mnist", 0.1))
        for s in (0, 1)
    ]
    runs, epochs = run_frames(specs)
    result = analyze(runs, epochs, QUICK)
    assert result.validated_on_test == ("digits",)
    assert "digits" in result.selection_note and "mnist" not in result.selection_note
    html = "".join(
        p for p in convergence_regimes(ReportInput(runs, epochs)).parts if isinstance(p, str)
    )
    assert "Optimistic selections: digits validated on the test split" in html
    held_out = runs.assign(**{"config.dataset.validation": 0.1})
    assert analyze(held_out, epochs, QUICK).selection_note is None


def test_the_cpu_study_that_claims_p_min_validates_on_held_out_data():
    study = minarch.load_study(STUDIES / "minimal-architectures-cpu.yaml")
    assert {d.name: d.validation for d in study.datasets} == {
        "digits": 0.2,
        "mnist1d": 0.2,
        "mnist": 0.05,
        "fashion-mnist": 0.05,
        "cifar10-jpeg": 0.02,
    }


def test_study_files_naming_the_retired_threshold_still_load():
    text = "name: s\ndatasets: [digits]\nmodels: [{family: mlp, width: 4}]\n"
    old = parse_study(text + "analysis: {val_min_before: 0.8, gap: 0.2}\n")
    assert old.analysis == AnalysisSpec(gap=0.2)
