"""Honest edges: a P_min or ROI at the grid's edge is a bound, flagged by analysis, worded by the
report; accuracy plots show chance."""

from __future__ import annotations

import pandas as pd

from minarch.analysis import hpspace_tables, minimal_parameters
from minarch.analysis.minimal import bound
from minarch.reporting import ReportInput, findings
from minarch.reporting.sections.accuracy import accuracy_vs_params
from minarch.reporting.sections.curves import learning_curves
from minarch.reporting.sections.hpspace import hyperparameter_space
from minarch.reporting.sections.regimes import convergence_regimes
from tests.test_analysis import EPOCHS, classified, run_frames, stable
from tests.test_findings import minimal
from tests.test_hpspace import axis, bowl, runs_on_grid, two_variants
from tests.test_report import frames

ONLY_THE_LARGEST = {10: [("unstable", 0.1)] * 3, 100: [("unstable", 0.2)] * 3, 6_538: stable(0.9)}


def test_p_min_at_either_end_of_the_sizes_is_flagged_as_a_bound():
    (edge,) = minimal_parameters(classified(ONLY_THE_LARGEST)).to_dict("records")
    assert edge["p_min"] == 6_538 and edge["p_min_edge"] == "upper"
    inside = {10: stable(0.91), 100: stable(0.95), 1000: stable(0.96)}
    (found,) = minimal_parameters(classified(inside)).to_dict("records")
    assert found["p_min"] == 10 and found["p_min_edge"] == "lower"  # the smallest tested
    unstable = {10: [("unstable", 0.1)] * 3}
    assert minimal_parameters(classified(unstable)).loc[0, "p_min_edge"] == "not_reached"


def test_p_min_at_the_edge_is_written_as_a_bound_in_table_and_findings():
    assert bound(6_538, "upper", 6_538) == "≥ 6,538"
    assert bound(1_210, "lower", 6_538) == "≤ 1,210"
    assert bound(float("nan"), "not_reached", 6_538) == "not reached (> 6,538)"
    assert bound(2_000, "", 6_538) == "2,000"
    stuck = {"train_loss": [2.3] * EPOCHS, "val_acc": [0.1] * EPOCHS}
    specs = [
        ({"params": p, "model": f"mlp {p}", "seed": s}, stuck if p < 6_538 else {})
        for p in (10, 100, 6_538)
        for s in range(2)
    ]
    section = convergence_regimes(ReportInput(*run_frames(specs)))
    html = "".join(p for p in section.parts if isinstance(p, str))
    assert "<td>≥ 6,538</td>" in html
    assert any(
        s.startswith("mlp on Digits (8x8): P_min ≥ 6,538 parameters")
        and "only the largest size qualifies, so this is a bound" in s
        for s in section.findings
    )
    regime_map = next(f.figure for f in section.figures if f.slug == "regime-map-digits")
    texts = [a.text for a in regime_map.layout.annotations]
    assert any("P_min" in t and "≥" in t for t in texts)


def test_p_min_trend_into_an_edge_says_at_least():
    rows = [("digits", "mlp", 1_200.0), ("mnist1d", "mlp", 12_700.0)]
    result = minimal(rows, {("mnist1d", "mlp"): "upper"})
    (sentence,) = [s for s in findings.regimes(result, ["digits", "mnist1d"]) if "For mlp" in s]
    assert sentence.endswith(": 1,200 on Digits (8x8), ≥ 12,700 on MNIST-1D.")


def corner_runs() -> pd.DataFrame:
    """A model whose best hyperparameters lie beyond the grid's largest learning rate."""
    grid = (axis(-4.4, -1.6), axis(-2.6, -1.0))
    return runs_on_grid(bowl(-3.2, -0.6, k=5), *grid, base_model="resnet56")


def test_a_roi_on_the_grid_border_is_flagged_with_its_sides():
    (row,) = hpspace_tables(corner_runs()).ellipses.to_dict("records")
    assert row["touches_edge"] and row["edges"] == "lr max"
    inside = hpspace_tables(two_variants()).ellipses
    assert not inside["touches_edge"].any() and set(inside["edges"]) == {""}


def test_a_roi_on_the_border_is_a_bound_in_table_figure_and_findings():
    runs = corner_runs()
    pruned = runs.assign(variant="pruned", model="resnet56-p60")
    section = hyperparameter_space(ReportInput(pd.concat([runs, pruned]), pd.DataFrame()))
    html = "".join(p for p in section.parts if isinstance(p, str))
    assert "1.0-ROI at the grid&#x27;s edge" in html and "<td>yes (lr max): a bound</td>" in html
    (sentence,) = section.findings
    assert "reaches the grid's edge for base (lr max); pruned (lr max)" in sentence
    assert "the optimum may lie outside the grid" in sentence
    surface = section.figures[0].figure
    assert "reaches the grid's edge (lr max)" in surface.layout.title.text


def chance_lines(figure) -> list[str]:
    return [a.text for a in figure.layout.annotations if a.text and a.text.startswith("chance")]


def test_accuracy_plots_draw_chance():
    runs, epochs = frames(datasets=("digits",))  # 10 classes
    data = ReportInput(runs, epochs)
    (acc,) = accuracy_vs_params(data).figures
    assert chance_lines(acc.figure) == ["chance (10 %)"]
    val_acc, loss = learning_curves(data).figures
    assert chance_lines(val_acc.figure) == ["chance (10 %)"] and not chance_lines(loss.figure)
    regimes = convergence_regimes(ReportInput(runs, epochs, None))
    for fig in regimes.figures:
        assert chance_lines(fig.figure), fig.slug


def test_no_chance_line_when_the_class_count_is_unknown():
    runs, epochs = frames(datasets=("my-folder",))
    (acc,) = accuracy_vs_params(ReportInput(runs, epochs)).figures
    assert not chance_lines(acc.figure)
