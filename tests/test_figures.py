"""Figures a reader can read: P_min lines in the legend, empty panels said so, sizes told apart,
whole epochs, few log-axis labels, learning rates as numbers, datasets not joined by lines."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from minarch.reporting import ReportInput, style
from minarch.reporting.page import _figure as page_figure
from minarch.reporting.png import LEGEND_ENTRY, LEGEND_TOP, PNG_OPTIONS, figure_height
from minarch.reporting.section import Figure
from minarch.reporting.sections.accuracy import accuracy_vs_params, size_lines
from minarch.reporting.sections.curves import learning_curves
from minarch.reporting.sections.hpspace import hyperparameter_space
from minarch.reporting.sections.quantization import quantization_robustness
from minarch.reporting.sections.regimes import P_MIN_COLOR, REGIME_COLORS, convergence_regimes
from minarch.reporting.sections.summary import summary_tables
from tests.test_analysis import run_frames, study_frames
from tests.test_compression import parents, synthetic
from tests.test_hpspace import two_variants
from tests.test_report import frames


def figure(section, slug: str) -> go.Figure:
    return next(f.figure for f in section.figures if f.slug == slug)


def test_p_min_lines_have_legend_entries_in_a_colour_no_regime_uses():
    section = convergence_regimes(ReportInput(*study_frames(("digits",))))
    fig = figure(section, "regime-map-digits")
    lines = [s for s in fig.layout.shapes if s.name and s.name.startswith("P_min")]
    assert sorted(s.name for s in lines) == ["P_min cnn: 100", "P_min mlp: 100"]
    assert all(s.showlegend for s in lines)
    assert {s.line.color for s in lines} == {P_MIN_COLOR} and P_MIN_COLOR not in REGIME_COLORS
    assert len({s.line.dash for s in lines}) == 2  # families told apart by dash
    (label,) = [a for a in fig.layout.annotations if a.text.startswith("P_min")]
    assert label.text == "P_min cnn, mlp" and label.x == 2  # log10(100): on the line


def test_empty_regime_panels_say_so():
    runs, epochs = run_frames([({"params": p, "model": f"mlp {p}"}, {}) for p in (10, 100)])
    fig = figure(convergence_regimes(ReportInput(runs, epochs)), "regime-curves-digits")
    empty = [a for a in fig.layout.annotations if a.text == "no runs in this regime"]
    assert sorted(a.xref for a in empty) == ["x domain", "x2 domain"]  # unstable, overfitting


def test_learning_curves_tell_sizes_apart_with_whole_epochs():
    runs, epochs = frames(datasets=("digits",))
    acc, loss = learning_curves(ReportInput(runs, epochs)).figures
    mlp = [t for t in acc.figure.data if t.legendgroup == "mlp"]
    assert [t.showlegend for t in mlp] == [None] * 3  # every size in the legend
    assert mlp[0].legendgrouptitle.text == "mlp"
    assert "mlp, 1,000 parameters" in mlp[0].hovertemplate
    for fig in (acc.figure, loss.figure):
        assert fig.layout.xaxis.tickmode == "linear" and fig.layout.xaxis.dtick == 1
    assert loss.figure.layout.yaxis.type == "log"


def test_log_axes_label_decades_not_every_minor_tick():
    runs, epochs = frames(datasets=("digits",))
    (acc,) = accuracy_vs_params(ReportInput(runs, epochs)).figures
    axis = acc.figure.layout.xaxis
    assert axis.type == "log" and list(axis.ticktext) == ["1k", "10k", "100k", "1M"]

    def ticks(values):
        fig = go.Figure()
        style.log_axis(fig, values)
        return list(fig.layout.xaxis.ticktext or [])

    assert [t for t in ticks([1_500, 8_000]) if t in ("2k", "5k")] == ["2k", "5k"]  # 1-2-5
    assert "2.5k" in ticks([2_500, 3_000, 3_500])  # too narrow for 1-2-5: the values
    assert ticks([np.nan, 0]) == []  # nothing to place: plain log axis


def test_learning_rates_are_numbers_not_log10():
    runs, epochs = frames(datasets=("digits",))
    html = "".join(summary_tables(ReportInput(runs, epochs)).parts)
    assert "<th>Learning rate</th>" in html and "<td>0.001</td><td>0.0005</td>" in html
    assert "log10" not in html
    section = hyperparameter_space(ReportInput(runs=two_variants(), epochs=pd.DataFrame()))
    surface = section.figures[0].figure
    assert surface.layout.yaxis.title.text == "Learning rate (log scale)"
    assert "0.01" in surface.layout.yaxis.ticktext and "0.000631" in surface.layout.xaxis.ticktext
    grid = next(t for t in surface.data if t.name == "grid point")
    assert "log10" not in grid.hovertemplate and "0.0398" in grid.customdata[:, 4]
    table = "".join(p for p in section.parts if isinstance(p, str))
    assert "<th>θ* learning rate</th>" in table and "<td>0.0398</td>" in table


def test_datasets_on_a_category_axis_are_not_joined_by_lines():
    section = convergence_regimes(ReportInput(*study_frames()))
    assert {t.mode for t in figure(section, "p-min-vs-dataset").data} == {"markers"}
    frame = synthetic()
    quant = quantization_robustness(ReportInput(parents(frame), pd.DataFrame(), None, frame))
    assert {t.mode for t in figure(quant, "quant-bits-vs-dataset").data} == {"markers"}


def test_accuracy_lines_join_only_models_that_differ_in_one_size_field():
    runs = pd.DataFrame(
        {
            "dataset": "digits",
            "family": ["cnn"] * 4 + ["mlp"] * 2,
            "model": ["cnn d1 c4", "cnn d1 c8", "cnn d2 c4", "cnn d2 c8", "mlp w4", "mlp w8"],
            "config.model.depth": [1.0, 1.0, 2.0, 2.0, 1.0, 1.0],
            "config.model.channels": [4.0, 8.0, 4.0, 8.0, np.nan, np.nan],
            "config.model.width": [np.nan] * 4 + [4.0, 8.0],
        }
    )
    archs = runs[["dataset", "family", "model"]]
    lines = size_lines(archs, runs)
    assert lines.tolist() == ["cnn depth 1"] * 2 + ["cnn depth 2"] * 2 + ["mlp"] * 2


def test_whole_numbers_print_without_a_decimal_point():
    assert [style.whole(v) for v in (128.0, 3.0, 0.5, "max", 2)] == ["128", "3", "0.5", "max", "2"]


def test_pruning_curves_of_one_family_differ_in_width_as_well_as_shade():
    table = pd.DataFrame(
        {"dataset": "d", "family": "mlp", "model": ["a", "b", "c"], "params": [10, 20, 30]}
    )
    colors, widths = style.model_colors(table), style.model_widths(table)
    assert len(set(colors.values())) == 3 and len(set(widths.values())) == 3
    assert widths[("d", "mlp", "a")] < widths[("d", "mlp", "c")]


def test_a_long_legend_gets_a_figure_tall_enough_for_it_in_html_and_png():
    """Every legend row (entries and family titles) fits: nothing is cut off or scrolled."""
    fig = go.Figure(
        [
            go.Scatter(
                x=[1],
                y=[1],
                name=f"m{i}",
                legendgroup=f"f{i % 2}",
                legendgrouptitle_text=f"f{i % 2}",
            )
            for i in range(20)
        ]
    )
    assert figure_height(fig) == LEGEND_TOP + LEGEND_ENTRY * (20 + 2)
    assert figure_height(go.Figure(go.Scatter(x=[1], y=[1]))) == PNG_OPTIONS["height"]
    assert f"height:{figure_height(fig)}px" in page_figure(Figure("curves", fig))


def test_the_template_assigned_unvalidated_is_plotlys_and_validation_stays_on():
    """``style.use_template`` skips the whole-template copy and check of a template assigned
    by name; the figure is the same, and what is set on it afterwards is still checked."""
    scatter = go.Scatter(x=[1, 2], y=[3, 4])
    fig = go.Figure(scatter)
    style.use_template(fig, style.TEMPLATE)
    validated = go.Figure(scatter).update_layout(template=style.TEMPLATE)
    assert json.loads(fig.to_json()) == json.loads(validated.to_json())
    with pytest.raises(ValueError, match="not_a_property"):
        fig.update_layout(not_a_property=1)
