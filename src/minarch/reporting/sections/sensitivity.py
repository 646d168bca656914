"""How much the hyperparameters matter: the whole grid, not only each chosen configuration.

Per dataset, each architecture's accuracy along the learning rates it was
trained with (at its chosen weight decay) and along the weight decays (at its
chosen learning rate), mean ± std over seeds; and every run on parallel
categories over the fields the study varies, coloured by accuracy.
"""

from __future__ import annotations

from html import escape

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from minarch.analysis.difficulty import in_order
from minarch.analysis.selection import (
    ARCH,
    chance,
    complete_configurations,
    configurations,
    seed_accuracy,
)
from minarch.reporting import findings, style
from minarch.reporting.section import Figure, ReportInput, Section, slugify

HYPERPARAMETERS = {"lr": "learning rate", "weight_decay": "weight decay"}
ARCHITECTURE_FIELDS = ["family", "params"]
"""Parallel-category axes that describe the architecture; the plot needs more than these."""
_SAME_AS = ("config.seed", "config.training.lr", "config.training.weight_decay")
_SAME_AS += ("config.model.family", "config.dataset.name")  # repeat a shown column
MAX_CATEGORY_LABEL = 24


def hyperparameter_sensitivity(data: ReportInput) -> Section | None:
    """Slices through the lr × weight-decay grid and a parallel-categories view, per dataset."""
    runs = _finished(data.runs)
    if runs.empty:
        return None
    configs = configurations(runs)
    parts: list[str | Figure] = []
    sentences: list[str] = []
    for dataset in in_order(configs["dataset"], data.dataset_order):
        here = configs[configs["dataset"] == dataset]
        name, slug = escape(style.dataset_title(dataset)), slugify(dataset)
        varied = [h for h in HYPERPARAMETERS if here.groupby(ARCH)[h].nunique().max() > 1]
        fields = _varied_fields(runs[runs["dataset"] == dataset])
        shown: list[str | Figure] = []
        if varied:
            slices = {h: _slice(here, h) for h in varied}
            shown.append(Figure(f"sensitivity-{slug}", _slice_figure(slices, name, dataset)))
            sentences += findings.sensitivity(str(dataset), slices, HYPERPARAMETERS)
        if set(fields) - set(ARCHITECTURE_FIELDS):
            runs_here = runs[runs["dataset"] == dataset]
            shown.append(Figure(f"parallel-{slug}", _parallel(runs_here, fields, name)))
        if shown:
            parts += [f"<h3>{name}</h3>", *shown]
    if not parts:
        return None
    note = (
        "<p>Every configuration trained, not only the chosen one: a panel per hyperparameter "
        "the grid varies, accuracy along the learning rates tried (each architecture at its "
        "chosen weight decay) and along the weight decays (at its chosen learning rate); ★ the "
        "chosen configuration. Mean final "
        "validation accuracy over seeds, a diverged seed counting at chance; error bars: "
        "standard deviation over seeds. The parallel-categories plot draws one band per run "
        "across the fields the study varies, coloured by its final validation accuracy; drag "
        "a category to reorder it.</p>"
    )
    return Section("Sensitivity to hyperparameters", (note, *parts), tuple(sentences))


def _finished(runs: pd.DataFrame) -> pd.DataFrame:
    """Base runs of finished configurations, each with its chance level and seed accuracy."""
    if any(c not in runs.columns for c in [*ARCH, "params", "lr", "weight_decay", "state"]):
        return runs.iloc[:0]
    runs = complete_configurations(runs)
    runs = runs.assign(chance=runs["dataset"].map(chance))
    return runs.assign(acc=seed_accuracy(runs))


def _slice(configs: pd.DataFrame, varied: str) -> pd.DataFrame:
    """Each architecture's configurations along ``varied``, the other hyperparameter held at
    its chosen value; sorted by architecture size, then ``varied``."""
    held = next(h for h in HYPERPARAMETERS if h != varied)
    chosen = configs.loc[configs["chosen"], [*ARCH, held]]
    rows = configs.merge(chosen, on=[*ARCH, held])
    return rows.sort_values(["family", "params", "model", varied], kind="stable")


def _slice_figure(slices: dict[str, pd.DataFrame], name: str, dataset: object) -> go.Figure:
    titles = [f"vs {HYPERPARAMETERS[h]}" for h in slices]
    fig = make_subplots(rows=1, cols=len(slices), shared_yaxes=True, subplot_titles=titles)
    colors = style.model_colors(next(iter(slices.values())))
    for col, (varied, rows) in enumerate(slices.items(), start=1):
        positive = bool((rows[varied] > 0).all())
        for (family, model), line in rows.groupby(["family", "model"], sort=False):
            x = line[varied] if positive else line[varied].map(style.number)
            label = f"{escape(str(model))} ({style.count(float(line['params'].iloc[0]))})"
            fig.add_scatter(
                x=x,
                y=100 * line["acc_mean"],
                error_y={
                    "array": [None if np.isnan(v) else v for v in 100 * line["acc_std"]],
                    "thickness": 1.2,
                },
                mode="lines+markers",
                name=label,
                legendgroup=str(family),
                legendgrouptitle_text=escape(str(family)),
                showlegend=col == 1,
                line={"color": colors[(line["dataset"].iloc[0], family, model)], "width": 1.6},
                marker={
                    "size": [14 if c else 7 for c in line["chosen"]],
                    "symbol": ["star" if c else "circle" for c in line["chosen"]],
                },
                customdata=np.column_stack(
                    [line[varied].map(style.number), line["n_seeds"].astype(int)]
                ),
                hovertemplate=(
                    f"<b>{label}</b><br>{HYPERPARAMETERS[varied]} %{{customdata[0]}}"
                    "<br>val. acc. %{y:.2f}% over %{customdata[1]} seed(s)<extra></extra>"
                ),
                row=1,
                col=col,
            )
        if positive:
            style.log_axis(fig, rows[varied], label=style.number, row=1, col=col)
        else:  # a weight decay of 0 has no place on a log axis
            fig.update_xaxes(type="category", row=1, col=col)
    style.chance_line(fig, chance(dataset), row="all", col="all")
    style.styled(
        fig,
        title=f"{name}: accuracy across the hyperparameter grid",
        x_title="",
        y_title="Mean final validation accuracy (%)",
    )
    for col, varied in enumerate(slices, start=1):
        fig.update_xaxes(title_text=HYPERPARAMETERS[varied].capitalize(), row=1, col=col)
        if col > 1:  # one y title, on the first panel
            fig.update_yaxes(title_text=None, row=1, col=col)
    fig.update_layout(legend_title_text="Architecture (parameters)", legend_groupclick="toggleitem")
    return fig


def _varied_fields(runs: pd.DataFrame) -> list[str]:
    """The run-table columns that take two or more values: architecture and study fields."""
    candidates = [*ARCHITECTURE_FIELDS, *HYPERPARAMETERS]
    candidates += [c for c in runs.columns if c.startswith("config.") and c not in _SAME_AS]
    return [c for c in candidates if c in runs.columns and _text(runs[c]).nunique() > 1]


def _text(values: pd.Series) -> pd.Series:
    """Values as strings, so lists (milestones) and mixed types compare."""
    return values.map(lambda v: "" if v is None or v != v else style.whole(v))  # v != v: NaN


def _parallel(runs: pd.DataFrame, fields: list[str], name: str) -> go.Figure:
    """One band per run across ``fields``, coloured by its final validation accuracy (%).

    Parallel categories, not plotly's parallel coordinates: a grid's values are
    categories anyway, and parcats draws SVG where parcoords needs WebGL.
    """
    acc = 100 * runs["acc"].to_numpy(float)
    fig = go.Figure(
        go.Parcats(
            dimensions=[_dimension(runs[field], field) for field in fields],
            line={
                "color": np.nan_to_num(acc, nan=0.0),
                "colorscale": "Viridis",
                "showscale": True,
                "colorbar": {"title": {"text": "val. acc. (%)"}},
                "shape": "hspline",
            },
            labelfont={"size": 12},  # axis titles side by side: a smaller font keeps them apart
            tickfont={"size": 11},
            hoveron="color",
            hoverinfo="count+probability",
            arrangement="freeform",
        )
    )
    title = f"{name}: every run across the fields the study varies"
    style.styled(fig, title=title, x_title="", y_title="")
    fig.update_layout(margin={"l": 90, "r": 40, "t": 110, "b": 40})
    return fig


def _exact(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:.6g}"


def _dimension(values: pd.Series, field: str) -> dict:
    """A parallel-categories axis: values as the study file writes them, in numeric order."""
    label = HYPERPARAMETERS.get(field, field.split(".")[-1])  # config.model.kernel: kernel
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.notna().all():
        show = style.count if field == "params" else style.number
        if len({show(v) for v in numeric.unique()}) < numeric.nunique():
            show = _exact  # 24,674 and 24,746 are both 24.7k: one category for two
        order = [show(v) for v in sorted(numeric.unique())]
        shown = numeric.map(show)
    else:
        shown = _text(values).map(lambda v: escape(v[:MAX_CATEGORY_LABEL]))
        order = sorted(shown.unique())
    return {
        "label": label,
        "values": shown.tolist(),
        "categoryorder": "array",
        "categoryarray": order,
    }
