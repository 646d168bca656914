"""Learning curves: whether small models learn slowly, plateau low, or never start."""

from __future__ import annotations

from html import escape

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from minarch.analysis import summary
from minarch.analysis.selection import chance
from minarch.reporting import findings, style
from minarch.reporting.section import Figure, ReportInput, Section, slugify


def learning_curves(data: ReportInput) -> Section | None:
    """Per dataset, validation accuracy and train loss per epoch, mean over seeds."""
    runs, epochs = data.runs, data.epochs
    chosen = summary.chosen_runs(runs)
    if chosen.empty or epochs.empty:
        return None
    curves = (
        chosen[[*summary.ARCH, "params", "run_id"]]
        .merge(epochs, on="run_id")
        .groupby([*summary.ARCH, "params", "epoch"], dropna=False)[["val_acc", "train_loss"]]
        .mean()
        .reset_index()
    )
    curves["val_acc"] *= 100
    parts: list[str | Figure] = []
    for dataset, group in curves.groupby("dataset", dropna=False):
        name, slug = escape(style.dataset_title(dataset)), slugify(dataset)
        acc = _figure(group, "val_acc", f"{name}: validation accuracy", "Validation accuracy (%)")
        style.chance_line(acc, chance(dataset))
        loss = _figure(
            group, "train_loss", f"{name}: training loss", "Train loss (log scale)", log_y=True
        )
        parts += [
            f"<h3>{name}</h3>",
            Figure(f"val-acc-curves-{slug}", acc),
            Figure(f"train-loss-curves-{slug}", loss),
        ]
    if not parts:
        return None
    note = (
        "<p>One line per architecture (its chosen configuration, mean over seeds), in its "
        "family's colour, lighter for smaller models; the legend lists each by size.</p>"
    )
    return Section(
        "Learning curves", (note, *parts), tuple(findings.curves(curves, data.dataset_order))
    )


def _figure(
    curves: pd.DataFrame, column: str, title: str, y_title: str, *, log_y: bool = False
) -> go.Figure:
    """One line per architecture, a legend entry each under its family, lighter when smaller."""
    fig = go.Figure()
    colors = style.model_colors(curves)
    for family, fam in curves.groupby("family", sort=True, dropna=False):
        sizes = fam.groupby("model", dropna=False)["params"].first().sort_values()
        for model, params in sizes.items():
            line = fam[fam["model"] == model].sort_values("epoch")
            # a log axis cannot show a loss <= 0, and a diverged tail is inf
            line = line[np.isfinite(line[column]) & ((line[column] > 0) | (not log_y))]
            name = f"{escape(str(model))} ({style.count(float(params))})"
            fig.add_scatter(
                x=line["epoch"],
                y=line[column],
                mode="lines",
                name=name,
                legendgroup=str(family),
                legendgrouptitle_text=escape(str(family)),
                line={"color": colors[(line["dataset"].iloc[0], family, model)], "width": 1.8},
                hovertemplate=(
                    f"<b>{name}</b><br>{escape(str(family))}, {float(params):,.0f} parameters"
                    "<br>epoch %{x}<br>%{y:.4g}<extra></extra>"
                ),
            )
    style.styled(fig, title=title, x_title="Epoch", y_title=y_title)
    fig.update_layout(legend_title_text="Architecture (parameters)", legend_groupclick="toggleitem")
    style.epoch_axis(fig, float(curves["epoch"].max()))
    if log_y:
        style.log_axis(fig, curves[column], axis="y", label=lambda v: f"{v:g}")
    return fig
