"""Convergence regimes and minimal parameters (docs/methods.md A.1-A.2) on constructed tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.offline
import pytest

from minarch.analysis import (
    AnalysisSpec,
    analyze,
    architecture_table,
    classify_runs,
    minimal_parameters,
)
from minarch.errors import MinarchError, SpecError
from minarch.reporting import ReportInput, write_report
from minarch.reporting.sections.regimes import convergence_regimes
from minarch.spec import StudySpec, expand, parse_study

EPOCHS = 10
LEARNING = {  # falling losses, no gap: plain learning
    "train_loss": np.linspace(2.3, 0.3, EPOCHS),
    "val_loss": np.linspace(2.3, 0.35, EPOCHS),
    "train_acc": np.linspace(0.3, 0.92, EPOCHS),
    "val_acc": np.linspace(0.3, 0.90, EPOCHS),
}
EVIL = "<script>alert(1)</script>"


def run_frames(specs):
    """Runs and epochs from (run fields, curve overrides) pairs, as the store returns them."""
    runs, epochs = [], []
    for i, (fields, curves) in enumerate(specs):
        run = {
            "run_id": f"r{i}",
            "dataset": "digits",
            "family": "mlp",
            "model": "mlp w8",
            "params": 100,
            "lr": 1e-3,
            "weight_decay": 0.0,
            "seed": 0,
            "state": "done",
            **fields,
        }
        curve = {**LEARNING, **curves}
        runs.append(
            {
                **run,
                "study": "s",
                "flops": 2 * run["params"],
                "final_val_acc": curve["val_acc"][-1],
                "best_val_acc": max(curve["val_acc"]),
            }
        )
        for epoch in range(len(curve["train_loss"])):
            row = {name: float(values[epoch]) for name, values in curve.items()}
            epochs.append({"run_id": run["run_id"], "epoch": epoch + 1, **row})
    return pd.DataFrame(runs), pd.DataFrame(epochs)


def verdict(curves, fields=None):
    classified = classify_runs(*run_frames([(fields or {}, curves)]))
    return tuple(classified.loc[0, ["regime", "rule"]])


def test_plain_learning():
    assert verdict({}) == ("learning", "none")


@pytest.mark.parametrize(
    "fields, curves",
    [
        ({"state": "diverged"}, {"val_loss": np.r_[np.linspace(2.3, 0.5, EPOCHS - 1), np.inf]}),
        ({}, {"train_loss": np.r_[np.linspace(2.3, 0.3, EPOCHS - 1), np.nan]}),
    ],
    ids=["diverged-state", "nan-loss"],
)
def test_divergence(fields, curves):
    assert verdict(curves, fields) == ("unstable", "divergence")


def test_diverged_in_its_first_epoch_has_no_curve_and_is_still_classified():
    runs, epochs = run_frames([({"state": "diverged"}, {})])
    classified = classify_runs(runs, epochs.iloc[:0])
    assert tuple(classified.loc[0, ["regime", "rule"]]) == ("unstable", "divergence")


def test_no_progress_and_loss_blow_up():
    """A loss above 90 % of ln C is unstable; the validation accuracy says which kind."""
    flat = np.linspace(2.30, 2.10, EPOCHS)  # fell 8.7 %: less than 10 %
    guessing = {"val_acc": np.full(EPOCHS, 0.15), "train_acc": np.full(EPOCHS, 0.5)}
    assert verdict({"train_loss": flat, **guessing}) == ("unstable", "no progress")
    # the logistic model at lr 30: loss 12.8, yet 87.8 % validation accuracy
    assert verdict({"train_loss": flat}) == ("unstable", "loss blow-up")
    assert verdict({"train_loss": np.linspace(2.30, 2.05, EPOCHS)})[0] == "learning"


def test_training_metrics_are_the_eval_mode_pass_where_stored():
    """The running train-mode mean understates the gap (87.6 % train against 93.2 % val)."""
    running = {"train_acc": np.full(EPOCHS, 0.876), "val_acc": np.linspace(0.5, 0.80, EPOCHS)}
    assert verdict(running) == ("learning", "none")
    measured = {**running, "train_eval_acc": np.full(EPOCHS, 0.95)}
    measured["train_eval_loss"] = np.linspace(2.3, 0.2, EPOCHS)
    runs, epochs = run_frames([({}, measured), ({"seed": 1, "lr": 1e-2}, running)])
    epochs.loc[epochs["run_id"] == "r1", ["train_eval_acc", "train_eval_loss"]] = np.nan
    classified = classify_runs(runs, epochs).set_index("run_id")
    assert tuple(classified.loc["r0", ["rule", "train_metrics"]]) == (
        "train-validation gap",
        "eval",
    )
    assert classified.loc["r0", "final_train_acc"] == 0.95
    # an old store's run (eval columns NaN) falls back to the running means
    assert tuple(classified.loc["r1", ["rule", "train_metrics"]]) == ("none", "running")
    stuck = {**measured, "train_eval_loss": np.full(EPOCHS, 2.25)}  # the eval loss decides
    assert verdict(stuck) == ("unstable", "loss blow-up")


def test_below_chance():
    stuck = {"train_acc": np.full(EPOCHS, 0.18), "val_acc": np.full(EPOCHS, 0.18)}
    assert verdict(stuck) == ("unstable", "below chance")  # 10 classes: needs >= 0.19
    assert verdict(stuck, {"dataset": "my-folder"})[0] == "learning"  # unknown: chance 0
    runs, epochs = run_frames([({"dataset": "my-folder"}, stuck)])
    classified = classify_runs(runs, epochs, num_classes={"my-folder": 2})
    assert classified.loc[0, "rule"] == "below chance"  # 2 classes: needs >= 0.55


def test_seed_disagreement_marks_every_seed_of_the_configuration():
    final = [0.90, 0.88, 0.75]
    specs = [
        ({"seed": s}, {"val_acc": np.linspace(0.3, acc, EPOCHS), "train_acc": np.full(EPOCHS, acc)})
        for s, acc in enumerate(final)
    ]
    specs.append(({"seed": 0, "lr": 1e-2}, {}))  # another configuration: not affected
    classified = classify_runs(*run_frames(specs))
    assert list(classified["rule"]) == ["seed disagreement"] * 3 + ["none"]
    assert list(classified["curve_rule"][:3]) == ["none"] * 3
    assert classified.loc[0, "seed_spread"] == pytest.approx(0.15)
    loose = classify_runs(*run_frames(specs), AnalysisSpec(seed_spread=0.2))
    assert set(loose["regime"]) == {"learning"}


def test_rising_validation_loss():
    rising = np.r_[np.linspace(2.3, 0.5, 3), np.linspace(0.55, 0.8, EPOCHS - 3)]
    falling = np.r_[np.linspace(0.3, 0.92, 3), np.linspace(0.91, 0.88, EPOCHS - 3)]  # 4 pp off
    assert verdict({"val_loss": rising, "val_acc": falling}) == (
        "overfitting",
        "rising validation loss",
    )
    late = np.r_[np.linspace(2.3, 0.5, 8), [0.6, 0.7]]  # accuracy still at its best
    assert verdict({"val_loss": late}) == ("learning", "none")
    small = np.r_[np.linspace(2.3, 0.5, 3), np.full(EPOCHS - 3, 0.54)]  # 8 % above: no
    assert verdict({"val_loss": small}) == ("learning", "none")
    stalled = np.r_[np.linspace(2.3, 0.5, 3), np.full(EPOCHS - 3, 0.6)]  # train loss flat too
    flat_train = np.r_[np.linspace(2.3, 0.5, 3), np.full(EPOCHS - 3, 0.5)]
    assert verdict({"val_loss": stalled, "train_loss": flat_train}) == ("learning", "none")


def test_train_validation_gap():
    assert verdict({"train_acc": np.full(EPOCHS, 0.99), "val_acc": np.full(EPOCHS, 0.85)}) == (
        "overfitting",
        "train-validation gap",
    )
    assert verdict({"train_acc": np.full(EPOCHS, 0.99), "val_acc": np.full(EPOCHS, 0.90)})[0] == (
        "learning"
    )


def test_rules_apply_in_order():
    both = {"train_loss": np.full(EPOCHS, 2.3), "train_acc": np.full(EPOCHS, 0.99)}
    assert verdict(both) == ("unstable", "loss blow-up")  # val acc 90 %: not "no progress"


def test_pending_and_failed_runs_are_not_classified():
    other = [({"state": "failed", "lr": 1e-2}, {}), ({"state": "pending", "lr": 1e-1}, {})]
    runs, epochs = run_frames([({}, {}), *other])
    assert list(classify_runs(runs, epochs)["run_id"]) == ["r0"]


def test_a_configuration_with_an_unfinished_seed_is_left_out_whole():
    """A study still running averaged 2 of 3 seeds; now it waits for the third, and says so."""
    low = {"val_acc": np.linspace(0.3, 0.5, EPOCHS)}
    specs = [({"seed": 0}, {}), ({"seed": 1}, {}), ({"seed": 2, "state": "running"}, low)]
    specs += [({"seed": s, "lr": 1e-2}, low) for s in range(3)]
    runs, epochs = run_frames(specs)
    result = analyze(runs, epochs, AnalysisSpec(bootstrap=0))
    assert set(result.runs["run_id"]) == {"r3", "r4", "r5"}
    assert result.architectures["lr"].tolist() == [1e-2]
    assert result.incomplete == 1
    assert result.notes[0].startswith("1 configuration with seeds not yet finished")


def test_missing_column_is_a_minarch_error():
    runs, epochs = run_frames([({}, {})])
    with pytest.raises(MinarchError, match="val_loss"):
        classify_runs(runs, epochs.drop(columns="val_loss"))


# --- configurations and P_min on constructed classified tables -----------------------


def classified(archs, *, family="mlp", dataset="d"):
    """{params: [(regime, best val acc) per seed]} as ``classify_runs`` would return it."""
    rows = [
        {
            "run_id": f"{dataset}-{family}-{params}-{seed}",
            "dataset": dataset,
            "family": family,
            "model": f"{family} {params}",
            "params": params,
            "lr": 1e-3,
            "weight_decay": 0.0,
            "seed": seed,
            "state": "done",
            "chance": 0.1,
            "curve_regime": regime,
            "regime": regime,
            "final_val_acc": acc,
            "best_val_acc": acc,
        }
        for params, seeds in archs.items()
        for seed, (regime, acc) in enumerate(seeds)
    ]
    frame = pd.DataFrame(rows)
    spread = frame.groupby("params")["final_val_acc"].transform(lambda a: a.max() - a.min())
    return frame.assign(seed_spread=spread)


def stable(acc, n=3):
    return [("learning", acc)] * n


def test_majority_ties_go_to_the_worse_regime():
    table = architecture_table(
        classified({10: [("learning", 0.5), ("overfitting", 0.5)], 20: [("unstable", 0.1)]})
    )
    assert list(table["regime"]) == ["overfitting", "unstable"]
    assert list(table["stability"]) == [1.0, 0.0]
    assert list(table["n_seeds"]) == [2, 1]


def test_p_min_not_reached_when_nothing_is_stable():
    archs = {10: [("unstable", 0.1)] * 3, 100: [("unstable", 0.2)] * 3}
    (row,) = minimal_parameters(classified(archs)).to_dict("records")
    assert row["p_min_edge"] == row["p_stable_edge"] == "not_reached"
    assert np.isnan(row["p_min"]) and np.isnan(row["p_min_low"]) and np.isnan(row["p_min_high"])
    assert row["reached_fraction"] == 0


def test_p_min_is_the_smallest_size_when_all_are_stable():
    archs = {10: stable(0.91), 100: stable(0.95), 1000: stable(0.96)}
    (row,) = minimal_parameters(classified(archs)).to_dict("records")
    assert row["p_min"] == 10 and row["best_acc"] == pytest.approx(0.96)
    assert row["p_min_edge"] == "lower"  # the smallest size tested: P_min <= 10
    assert row["p_min_low"] == row["p_min_high"] == 10 and row["reached_fraction"] == 1


def test_p_min_needs_every_larger_architecture_stable_and_accurate():
    archs = {
        10: [("unstable", 0.1)] * 3,
        100: stable(0.9),  # stable, but a larger one is not
        1000: [("learning", 0.9), ("learning", 0.9), ("unstable", 0.88)],
        10_000: stable(0.8),  # stable, below 90 % of the best (0.95)
        100_000: stable(0.95),
        1_000_000: stable(0.94),
    }
    (row,) = minimal_parameters(classified(archs)).to_dict("records")
    assert row["p_min"] == 100_000
    lenient = AnalysisSpec(stability_q=0.6, accuracy_fraction=0.8)
    assert minimal_parameters(classified(archs), lenient).loc[0, "p_min"] == 100


def test_architectures_of_equal_size_qualify_together():
    rows = pd.concat(
        [
            classified({10: stable(0.9), 100: stable(0.9)}),
            classified({100: [("unstable", 0.2)] * 3}).assign(model="other 100", run_id="o"),
            classified({1000: stable(0.9)}),
        ]
    )
    assert minimal_parameters(rows).loc[0, "p_min"] == 1000


def test_each_architecture_stands_by_its_best_configuration():
    good = classified({100: stable(0.9), 1000: stable(0.9)})
    bad_lr = classified({100: [("unstable", 0.1)] * 3}).assign(lr=1.0, run_id="x")
    table = architecture_table(pd.concat([good, bad_lr]))
    assert table.loc[table["chosen"], "lr"].tolist() == [1e-3, 1e-3]
    assert minimal_parameters(pd.concat([good, bad_lr])).loc[0, "p_min"] == 100


def test_p_over_is_where_overfitting_holds_from_there_on():
    archs = {
        10: [("unstable", 0.1)] * 3,
        100: [("overfitting", 0.9)] * 3,  # an island: a larger one learns again
        1000: stable(0.9),
        10_000: [("overfitting", 0.9)] * 3,
        100_000: [("overfitting", 0.9), ("overfitting", 0.9), ("learning", 0.9)],
    }
    assert minimal_parameters(classified(archs)).loc[0, "p_over"] == 10_000
    archs[1_000_000] = stable(0.9)
    assert np.isnan(minimal_parameters(classified(archs)).loc[0, "p_over"])


def test_bootstrap_interval_contains_the_estimate_and_is_deterministic():
    flaky = [("learning", 0.9)] * 4 + [("unstable", 0.85)]
    archs = {10: [("unstable", 0.1)] * 5, 100: flaky, 1000: flaky, 10_000: stable(0.92, 5)}
    t = AnalysisSpec(bootstrap=300, bootstrap_seed=7)
    first = minimal_parameters(classified(archs), t)
    row = first.loc[0]
    assert row["p_min"] == 10_000
    assert row["p_min_low"] <= row["p_min"] <= row["p_min_high"]
    assert row["p_min_low"] == 100  # resamples without the unstable seed reach lower
    pd.testing.assert_frame_equal(first, minimal_parameters(classified(archs), t))
    none = minimal_parameters(classified(archs), AnalysisSpec(bootstrap=0)).loc[0]
    assert none["p_min"] == 10_000 and np.isnan(none["p_min_low"])


def test_bootstrap_re_judges_seed_disagreement():
    split = [("learning", 0.95), ("learning", 0.95), ("learning", 0.80)]  # spread 15 pp
    archs = {100: split, 1000: stable(0.95)}
    frame = classified(archs)
    frame.loc[frame["params"] == 100, "regime"] = "unstable"  # what classify_runs would say
    row = minimal_parameters(frame, AnalysisSpec(bootstrap=200)).loc[0]
    assert row["p_min"] == 1000
    assert row["p_min_low"] == 100  # a resample of only the agreeing seeds qualifies


# --- end to end: analyze, the study file, the report section -------------------------


def study_frames(datasets=("digits", "mnist")):
    """A small sweep whose sizes fall into all three regimes, two seeds each."""
    overfit = {
        "val_loss": np.r_[np.linspace(2.3, 0.5, 3), np.linspace(0.55, 0.9, EPOCHS - 3)],
        "val_acc": np.r_[np.linspace(0.3, 0.92, 3), np.linspace(0.91, 0.90, EPOCHS - 3)],
        "train_acc": np.linspace(0.3, 0.99, EPOCHS),
    }
    stuck = {"train_loss": np.full(EPOCHS, 2.3), "val_acc": np.full(EPOCHS, 0.1)}
    sizes = {10: stuck, 100: {}, 1000: {}, 10_000: overfit}
    specs = [
        (
            {"dataset": d, "family": f, "model": f"{f} {EVIL} {p}", "params": p, "seed": s},
            curves,
        )
        for d in datasets
        for f in ("mlp", "cnn")
        for p, curves in sizes.items()
        for s in range(2)
    ]
    return run_frames(specs)


def test_analyze_returns_the_three_tables_and_its_definitions():
    result = analyze(*study_frames(), AnalysisSpec(bootstrap=50))
    assert set(result.runs["regime"]) == {"unstable", "learning", "overfitting"}
    assert len(result.architectures) == 16
    assert set(result.minimal["p_min"]) == {100}
    assert set(result.minimal["p_over"]) == {10_000}
    assert any("50 bootstrap" in line for line in result.definitions)


def test_analyze_hands_its_architecture_table_to_minimal_parameters_with_the_same_result():
    runs, epochs = study_frames()
    t = AnalysisSpec(bootstrap=50)
    result = analyze(runs, epochs, t)
    own = minimal_parameters(classify_runs(runs, epochs, t), t)
    pd.testing.assert_frame_equal(result.minimal, own)
    pd.testing.assert_frame_equal(result.architectures, architecture_table(result.runs))


def test_empty_tables_give_empty_results():
    result = analyze(pd.DataFrame(), pd.DataFrame())
    assert result.runs.empty and result.architectures.empty and result.minimal.empty


def test_study_analysis_section_sets_thresholds_and_keeps_run_ids():
    text = "name: s\ndatasets: [digits]\nmodels: [{family: mlp, width: 4}]\nseeds: 1\n"
    plain = parse_study(text)
    tuned = parse_study(text + "analysis: {stability_q: 0.5, bootstrap: 10}\n")
    assert plain.analysis == AnalysisSpec()
    assert tuned.analysis.stability_q == 0.5 and tuned.analysis.gap == 0.10
    assert [r.id for r in expand(plain)] == [r.id for r in expand(tuned)]
    with pytest.raises(SpecError, match="analysis.gap"):
        parse_study(text + "analysis: {gap: 2}\n")
    with pytest.raises(SpecError, match="analysis"):
        parse_study(text + "analysis: {gapp: 0.1}\n")


def test_report_section_renders(tmp_path):
    runs, epochs = study_frames()
    study = StudySpec(
        name="s",
        datasets=["digits"],
        models=[{"family": "mlp", "width": 4}],
        analysis=AnalysisSpec(bootstrap=20, stability_q=0.5),
    )
    section = convergence_regimes(ReportInput(runs, epochs, study))
    slugs = [f.slug for f in section.figures]
    assert slugs == [
        "p-min-vs-dataset",
        "regime-map-digits",
        "regime-curves-digits",
        "regime-map-mnist",
        "regime-curves-mnist",
    ]
    html = "".join(p for p in section.parts if isinstance(p, str))
    assert "the study's thresholds" in html and "at least 50 % of its seeds" in html
    regime_map = section.figures[1].figure
    assert {t.marker.color for t in regime_map.data} == {"#C0392B", "#2E86C1", "#8E44AD"}
    page = write_report(runs, epochs, tmp_path, title="t", png=False).read_text()
    assert "Convergence regimes and minimal parameters" in page
    assert EVIL not in page.replace(plotly.offline.get_plotlyjs(), "")
    assert convergence_regimes(ReportInput(runs.iloc[:0], epochs.iloc[:0])) is None


def test_report_section_with_one_dataset_has_no_complexity_figure():
    section = convergence_regimes(ReportInput(*study_frames(("digits",))))
    assert [f.slug for f in section.figures] == ["regime-map-digits", "regime-curves-digits"]
    assert "the default thresholds" in section.parts[0]


# --- A.2 revised: P_stable, the accuracy bar, edges, interleaved regimes -----------------


def test_the_bar_is_the_best_of_every_family_unless_a_target_or_the_family_is_asked():
    """The ladder's CIFAR ViT had a bar of 29.9 %: 90 % of its own poor best looked cheap."""
    strong = classified({1_000: stable(0.95), 10_000: stable(0.96)}, family="cnn")
    weak = classified({100: stable(0.30), 1_000: stable(0.33)}, family="vit")
    both = pd.concat([strong, weak], ignore_index=True)
    table = minimal_parameters(both, AnalysisSpec(bootstrap=0)).set_index("family")
    assert table.loc["vit", "bar_source"] == "all families"
    assert table.loc["vit", "accuracy_bar"] == pytest.approx(0.9 * 0.96)
    assert table.loc["vit", "p_min_edge"] == "not_reached" and np.isnan(table.loc["vit", "p_min"])
    assert table.loc["vit", "p_stable"] == 100  # stable, only not accurate
    own = AnalysisSpec(bootstrap=0, p_min_reference="family")
    old = minimal_parameters(both, own).set_index("family")
    assert old.loc["vit", "p_min"] == 100 and old.loc["vit", "bar_source"] == "family"
    target = AnalysisSpec(bootstrap=0, target_accuracy={"d": 0.955})
    found = minimal_parameters(both, target).set_index("family")
    assert found.loc["cnn", "bar_source"] == "target" and found.loc["cnn", "accuracy_bar"] == 0.955
    assert found.loc["cnn", "p_min"] == 10_000 and found.loc["cnn", "p_min_edge"] == "upper"


def test_p_stable_and_p_min_flag_their_edges():
    archs = {10: [("unstable", 0.1)] * 3, 100: stable(0.5), 1_000: stable(0.9), 10_000: stable(0.9)}
    row = minimal_parameters(classified(archs), AnalysisSpec(bootstrap=0)).loc[0]
    assert (row["p_stable"], row["p_stable_edge"]) == (100, "")
    assert (row["p_min"], row["p_min_edge"]) == (1_000, "")
    assert row["largest_params"] == 10_000


def test_overfitting_below_p_min_is_interleaved_not_bands():
    """On CIFAR, P_over (394,634) < P_min (427,658), yet bands were drawn."""
    archs = {
        100: [("overfitting", 0.5)] * 3,
        1_000: [("overfitting", 0.9)] * 3,
        10_000: [("overfitting", 0.95)] * 3,
    }
    row = minimal_parameters(classified(archs), AnalysisSpec(bootstrap=0)).loc[0]
    assert row["p_over"] == 100 and row["p_min"] == 1_000 and row["interleaved"]
    archs[100] = stable(0.5)
    row = minimal_parameters(classified(archs), AnalysisSpec(bootstrap=0)).loc[0]
    assert row["p_over"] == 1_000 and row["interleaved"]  # P_over = P_min: interleaved
    archs[1_000] = stable(0.9)
    assert not minimal_parameters(classified(archs), AnalysisSpec(bootstrap=0)).loc[
        0, "interleaved"
    ]


@pytest.mark.parametrize(
    ("analysis", "message"),
    [
        (
            "{target_accuracy: {digits: 0.05}}",
            "analysis.target_accuracy.digits: 0.05 is not above chance",
        ),
        ("{target_accuracy: {digits: 1.5}}", "analysis.target_accuracy.digits"),
        ("{target_accuracy: {mnist: 0.9}}", "analysis.target_accuracy: 'mnist' is not one of"),
        ("{difficulty_order: [cifar10]}", "analysis.difficulty_order: 'cifar10' is not one of"),
    ],
)
def test_a_bad_accuracy_target_is_one_line_and_exit_2(tmp_path, analysis, message):
    from tests.cli import TINY_STUDY, minarch

    (tmp_path / "s.yaml").write_text(TINY_STUDY + f"analysis: {analysis}\n")
    result = minarch("plan", "s.yaml", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
