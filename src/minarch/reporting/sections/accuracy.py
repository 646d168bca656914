"""Accuracy against size: where on the parameter axis each family starts to learn."""

from __future__ import annotations

from html import escape

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from minarch.analysis import summary
from minarch.analysis.difficulty import in_order
from minarch.analysis.selection import chance
from minarch.reporting import findings, style
from minarch.reporting.section import Figure, ReportInput, Section, slugify

_HOVER = (
    "<b>%{customdata[0]}</b><br>params %{x:,}<br>FLOPs %{customdata[1]}"
    "<br>%{customdata[3]} %{y:.2f}%<br>%{customdata[2]}<extra></extra>"
)


def accuracy_vs_params(data: ReportInput) -> Section | None:
    """Per dataset, mean final validation accuracy (%) against parameter count."""
    runs, epochs = data.runs, data.epochs
    archs = summary.architectures(runs)
    failed = summary.diverged(runs, epochs)
    order = data.dataset_order
    parts: list[str | Figure] = []
    archs["line"] = size_lines(archs, runs)
    for dataset in in_order(archs["dataset"], order):
        fig = _figure(
            escape(style.dataset_title(dataset)),
            archs[archs["dataset"] == dataset],
            failed[failed["dataset"] == dataset],
        )
        if fig.data:
            style.chance_line(fig, chance(dataset))
            slug = f"acc-vs-params-{slugify(dataset)}"
            parts += [f"<h3>{escape(style.dataset_title(dataset))}</h3>", Figure(slug, fig)]
    if not parts:
        return None
    note = (
        "<p>One point per architecture: the mean final validation accuracy over all seeds of "
        "its chosen learning-rate / weight-decay configuration (the one where that mean is "
        "highest), a diverged seed counting at chance; error bars are the standard deviation "
        "over seeds. &times; marks a diverged run at the best validation accuracy it reached "
        "before diverging (a best-epoch number, drawn apart).</p>"
    )
    sentences = findings.accuracy(archs, order, data.thresholds)
    return Section("Validation accuracy vs parameter count", (note, *parts), tuple(sentences))


DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
"""Lines of one family (a CNN of depth 1, of depth 2) share its colour and differ in dash."""


def size_lines(archs: pd.DataFrame, runs: pd.DataFrame) -> pd.Series:
    """The line each architecture is drawn on: models of a family that differ in one size field.

    The field with the most values (a tie: the later in the config, the width
    after the depth) runs along the line; every combination of the
    family's other varying fields (a CNN's depth, say) is a line of its own, named
    by them, so no line zig-zags between depths.
    """
    lines = archs["family"].astype(str)
    fields = [c for c in runs if c.startswith("config.model.") and c != "config.model.family"]
    if archs.empty or not fields:
        return lines
    sizes = runs.drop_duplicates(["dataset", "model"]).set_index(["dataset", "model"])[fields]
    keyed = archs.join(sizes, on=["dataset", "model"])
    for family, group in keyed.groupby("family"):
        varying = [f for f in fields if group[f].nunique() > 1]
        if len(varying) < 2:
            continue
        along = max(reversed(varying), key=lambda f: group[f].nunique())  # a tie: the later
        others = [f for f in varying if f != along]
        named = group[others].apply(
            lambda row: " ".join(
                f"{f.removeprefix('config.model.')} {style.whole(v)}" for f, v in row.items()
            ),
            axis=1,
        )
        lines[group.index] = f"{family} " + named
    return lines


def _figure(dataset: str, archs: pd.DataFrame, failed: pd.DataFrame) -> go.Figure:
    fig = go.Figure()
    shown = archs.dropna(subset=["acc_mean"]).sort_values("params")
    for (family, line), group in shown.groupby(["family", "line"], dropna=False, sort=True):
        lines_of_family = sorted(shown.loc[shown["family"] == family, "line"].unique())
        dash = DASHES[lines_of_family.index(line) % len(DASHES)]
        seeds = group["n_seeds"].map(lambda n: f"{n} seed{'s' if n != 1 else ''}")
        lr, wd = group["lr"].map(style.number), group["weight_decay"].map(style.number)
        config = "lr " + lr + ", weight decay " + wd
        fig.add_scatter(
            x=group["params"],
            y=100 * group["acc_mean"],
            error_y={"array": _none_for_nan(100 * group["acc_std"]), "thickness": 1.2},
            mode="lines+markers",
            name=escape(str(line)),
            legendgroup=str(line),
            line={"color": style.family_color(family), "width": 1.5, "dash": dash},
            marker={"size": 8},
            customdata=np.column_stack(
                [
                    group["model"].map(lambda m: escape(str(m))),
                    group["flops"].map(style.count),
                    seeds + ", " + config,
                    np.full(len(group), "mean final val. acc."),
                ]
            ),
            hovertemplate=_HOVER,
        )
    if not failed.empty:
        fig.add_scatter(
            x=failed["params"],
            y=100 * failed["acc"],
            mode="markers",
            name="diverged",
            marker={
                "symbol": style.DIVERGED_SYMBOL,
                "size": 9,
                "color": [style.family_color(f) for f in failed["family"]],
            },
            customdata=np.column_stack(
                [
                    failed["model"].map(lambda m: escape(str(m))),
                    failed["flops"].map(style.count),
                    "diverged, seed " + failed["seed"].astype(str),
                    np.full(len(failed), "best val. acc. before diverging"),
                ]
            ),
            hovertemplate=_HOVER,
        )
    style.styled(
        fig,
        title=f"{dataset}: validation accuracy vs size",
        x_title="Parameters (count, log scale)",
        y_title="Mean final validation accuracy (%)",
    )
    style.log_axis(fig, [*archs["params"], *failed["params"]])
    return fig


def _none_for_nan(values: pd.Series) -> list[float | None]:
    """Plotly draws no error bar for None; a NaN std (one seed) must become one."""
    return [v if np.isfinite(v) else None for v in values.astype(float)]
