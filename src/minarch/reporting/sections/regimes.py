"""Convergence regimes and minimal learnable parameters (docs/methods.md A.1-A.2).

Where each family stops being unstable, where it starts to overfit, and how
that smallest reliable size grows as the dataset gets harder.
"""

from __future__ import annotations

import math
import zlib
from html import escape

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from minarch.analysis import REGIMES, Analysis
from minarch.analysis.difficulty import in_order
from minarch.analysis.minimal import bound
from minarch.analysis.selection import chance
from minarch.reporting import findings, style
from minarch.reporting.section import Figure, ReportInput, Section, slugify

REGIME_COLORS = {"unstable": "#C0392B", "overfitting": "#8E44AD", "learning": "#2E86C1"}
FAMILY_SYMBOLS = {"mlp": "circle", "cnn": "square", "vit": "diamond"}
_OTHER_SYMBOLS = ("triangle-up", "cross", "star", "hexagon", "triangle-down", "pentagon")
P_MIN_COLOR = "#222222"
"""P_min lines are near-black, so no regime colour can be mistaken for one."""
EDGE_SYMBOLS = {"lower": "triangle-down", "upper": "triangle-up", "not_reached": "arrow-bar-up"}
"""Markers of a P_min that is a bound (``minimal.EDGES``); a bracketed one keeps its family's."""
P_MIN_DASHES = ("dash", "dot", "dashdot", "longdash", "longdashdot")
"""One dash pattern per family (in name order) tells the families' P_min lines apart."""

_HOVER = (
    "<b>%{customdata[0]}</b><br>params %{x:,}<br>final val. acc. %{y:.2f}%"
    "<br>%{customdata[1]}<extra></extra>"
)


def convergence_regimes(data: ReportInput) -> Section | None:
    """The regime map, curves by regime, and P_min / P_over per dataset and family.

    Thresholds come from the study's ``analysis:`` section (defaults without a
    study); the section says which it used.
    """
    epochs = data.epochs
    result = data.analysis
    if result.architectures.empty:
        return None
    datasets = in_order(result.architectures["dataset"], data.dataset_order)
    parts: list[str | Figure] = [
        _definitions(result, given=data.study is not None),
        _minimal_table(result.minimal, datasets),
    ]
    running = int((result.runs["train_metrics"] == "running").sum())
    if running:
        parts.append(
            f'<p class="note">{running} run{"s were" if running != 1 else " was"} judged on the '
            "running train-mode means (stored before the eval-mode training pass existed), "
            "which understate the train − validation gap.</p>"
        )
    if result.selection_note:
        parts.append(f'<p class="note">{escape(result.selection_note)}</p>')
    reached = result.minimal["p_min_edge"] != "not_reached"
    if len(datasets) > 1 and reached.any():
        parts.append(Figure("p-min-vs-dataset", _complexity_figure(result.minimal, datasets)))
    for dataset in datasets:
        name, slug = escape(style.dataset_title(dataset)), slugify(dataset)
        runs_here = result.runs[result.runs["dataset"] == dataset]
        parts += [
            f"<h3>{name}</h3>",
            _counts(runs_here),
            Figure(f"regime-map-{slug}", _regime_map(result, dataset)),
            Figure(f"regime-curves-{slug}", _curves_figure(runs_here, epochs, name)),
        ]
    return Section(
        "Convergence regimes and minimal parameters",
        tuple(parts),
        tuple(findings.regimes(result, datasets)),
    )


def family_symbol(family: object) -> str:
    """A fixed marker per known family, a stable one from the name otherwise."""
    name = str(family)
    if name in FAMILY_SYMBOLS:
        return FAMILY_SYMBOLS[name]
    return _OTHER_SYMBOLS[zlib.crc32(name.encode()) % len(_OTHER_SYMBOLS)]


def _definitions(result: Analysis, *, given: bool) -> str:
    source = "the study's thresholds" if given else "the default thresholds"
    items = "".join(f"<li>{escape(line)}</li>" for line in result.definitions)
    return f"<p>Definitions (docs/methods.md A.1–A.2) with {source}:</p><ul>{items}</ul>"


def _parameters(value: float) -> str:
    return f"{int(value):,}" if np.isfinite(value) else "not reached"


def _minimal_table(minimal: pd.DataFrame, datasets: list[str]) -> str:
    head = (
        "Dataset",
        "Family",
        "Architectures",
        "Best mean final val. acc. (%)",
        "Accuracy bar (%)",
        "P_stable",
        "P_min",
        "P_min 95 % interval",
        "Resamples reaching P_min (%)",
        "P_over",
    )
    rows = []
    rank = {name: i for i, name in enumerate(datasets)}
    ordered = minimal.sort_values("dataset", key=lambda s: s.map(rank), kind="stable")
    for row in ordered.itertuples():
        interval = f"{_parameters(row.p_min_low)} – {_parameters(row.p_min_high)}"
        cells = (
            escape(style.dataset_title(row.dataset)),
            escape(str(row.family)),
            str(row.n_architectures),
            style.percent(float(row.best_acc)),
            f"{style.percent(float(row.accuracy_bar))} ({escape(row.bar_source)})",
            escape(bound(row.p_stable, row.p_stable_edge, row.largest_params)),
            escape(bound(row.p_min, row.p_min_edge, row.largest_params)),
            interval if np.isfinite(row.reached_fraction) else "—",
            style.percent(float(row.reached_fraction)),
            _p_over(row),
        )
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    header = "".join(f"<th>{escape(h)}</th>" for h in head)
    return (
        f'<table class="summary"><thead><tr>{header}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _p_over(row) -> str:
    if not np.isfinite(row.p_over):
        return "none"
    return f"{int(row.p_over):,}" + (" (≤ P_min: regimes interleave)" if row.interleaved else "")


def _counts(classified: pd.DataFrame) -> str:
    """Runs per regime, and which rules put them outside "learning"."""
    regimes = classified["regime"].value_counts()
    rules = classified.loc[classified["regime"] != "learning", "rule"].value_counts()
    counts = ", ".join(f"{regime} {regimes.get(regime, 0)}" for regime in REGIMES)
    why = ", ".join(f"{rule} {n}" for rule, n in rules.items())
    return f"<p>Runs: {counts}{f' (by rule: {why})' if why else ''}.</p>"


def _regime_map(result: Analysis, dataset: str) -> go.Figure:
    """Each architecture's chosen configuration: size, accuracy over seeds, regime."""
    archs = result.architectures
    archs = archs[(archs["dataset"] == dataset) & archs["chosen"]]
    fig = go.Figure()
    for (family, regime), group in archs.groupby(["family", "regime"], sort=True):
        detail = (
            "stability "
            + (100 * group["stability"]).map("{:.0f}%".format)
            + ", "
            + group["n_seeds"].astype(str)
            + " seeds, lr "
            + group["lr"].map(style.number)
            + ", weight decay "
            + group["weight_decay"].map(style.number)
        )
        fig.add_scatter(
            x=group["params"],
            y=100 * group["acc_mean"],
            error_y={"array": 100 * group["acc_std"], "thickness": 1.2},
            mode="markers",
            name=f"{escape(str(family))} · {regime}",
            marker={
                "color": REGIME_COLORS[regime],
                "symbol": family_symbol(family),
                "size": 10,
                "line": {"width": 1, "color": "#222"},
            },
            customdata=np.column_stack([group["model"].map(lambda m: escape(str(m))), detail]),
            hovertemplate=_HOVER,
        )
    p_min_lines(fig, result.minimal[result.minimal["dataset"] == dataset], archs["params"])
    style.chance_line(fig, chance(dataset))
    style.styled(
        fig,
        title=f"{escape(style.dataset_title(dataset))}: convergence regimes",
        x_title="Parameters (count, log scale)",
        y_title="Mean final validation accuracy (%)",
    )
    fig.update_layout(legend_title_text="Family · regime")
    style.log_axis(fig, archs["params"])
    return fig


LABEL_GAP = 0.06
"""Rotated P_min labels closer than this share of the x axis (log10 span) would overlap."""
LABEL_STEP = 0.34
"""How far down the plot (its height's share) a label moves to clear its neighbour."""


def p_min_lines(fig: go.Figure, minimal: pd.DataFrame, params: pd.Series) -> None:
    """A near-black dashed line per family's P_min, with a legend entry naming it.

    Families that share a P_min share one label at the top of their lines; a
    label too close to its left neighbour to clear it goes lower down its line.
    """
    families = sorted(minimal["family"].astype(str).unique())
    labels: dict[float, list[str]] = {}
    for row in minimal[minimal["p_min_edge"] != "not_reached"].itertuples():
        line = {
            "color": P_MIN_COLOR,
            "dash": P_MIN_DASHES[families.index(str(row.family)) % len(P_MIN_DASHES)],
            "width": 1.5,
        }
        family = escape(str(row.family))
        value = escape(bound(row.p_min, row.p_min_edge, row.largest_params))
        if row.interleaved:
            value += ", regimes interleave"
        fig.add_vline(x=row.p_min, line=line, name=f"P_min {family}: {value}", showlegend=True)
        label = family + {"lower": " ≤", "upper": " ≥"}.get(row.p_min_edge, "")
        labels.setdefault(float(row.p_min), []).append(label)
    sizes = [math.log10(v) for v in (*params, *labels) if v > 0]
    gap = LABEL_GAP * max(max(sizes, default=1) - min(sizes, default=0), 1.0)
    lowest: list[float] = []  # per height: the right-most label placed there so far
    for p_min, names in sorted(labels.items()):
        x = math.log10(p_min)
        level = next((i for i, last in enumerate(lowest) if x - last >= gap), len(lowest))
        lowest[level : level + 1] = [x]
        # add_vline's own annotation lands at 10^x on a log axis: placed here in log10 units
        fig.add_annotation(
            x=x,
            y=1 - LABEL_STEP * (level % 3),
            yref="paper",
            text=f"P_min {', '.join(names)}",
            showarrow=False,
            xanchor="right",
            yanchor="top",
            textangle=-90,
            font={"size": 12, "color": P_MIN_COLOR},
            bgcolor="rgba(255, 255, 255, 0.85)",  # readable where a neighbouring line crosses
        )


def _curves_figure(classified: pd.DataFrame, epochs: pd.DataFrame, name: str) -> go.Figure:
    """One panel per regime, one line per run, coloured by family."""
    fig = make_subplots(rows=1, cols=len(REGIMES), shared_yaxes=True, subplot_titles=REGIMES)
    curves = classified[["run_id", "family", "regime"]].merge(epochs, on="run_id")
    shown: set[str] = set()
    for col, regime in enumerate(REGIMES, start=1):
        if not (curves["regime"] == regime).any():
            # plotly draws no axes for a panel without a trace: an empty one keeps its frame
            fig.add_scatter(x=[None], y=[None], showlegend=False, hoverinfo="skip", row=1, col=col)
            fig.add_annotation(
                text="no runs in this regime",
                x=0.5,
                y=0.5,
                xref="x domain" if col == 1 else f"x{col} domain",
                yref="y domain" if col == 1 else f"y{col} domain",
                showarrow=False,
                font={"color": "#777"},
            )
        for family, group in curves[curves["regime"] == regime].groupby("family", sort=True):
            x, y = _joined(group)
            fig.add_scatter(
                x=x,
                y=y,
                mode="lines",
                name=escape(str(family)),
                legendgroup=str(family),
                showlegend=family not in shown,
                opacity=0.6,
                line={"color": style.family_color(family), "width": 1.2},
                row=1,
                col=col,
            )
            shown.add(family)
    style.chance_line(fig, float(classified["chance"].max()), row="all", col="all")
    style.styled(
        fig,
        title=f"{name}: validation accuracy by regime",
        x_title="Epoch",
        y_title="Validation accuracy (%)",
    )
    for col in range(2, len(REGIMES) + 1):  # one y title, on the first panel
        fig.update_yaxes(title_text=None, col=col)
    style.epoch_axis(fig, float(curves["epoch"].max()) if len(curves) else 1.0)
    for col in range(2, len(REGIMES) + 1):  # one epoch range, empty panels included
        fig.update_xaxes(matches="x", col=col)
    return fig


def _joined(curves: pd.DataFrame) -> tuple[list[float], list[float]]:
    """Many runs as one trace, one per family and panel: a NaN point breaks the line."""
    x: list[float] = []
    y: list[float] = []
    for _, run in curves.sort_values("epoch").groupby("run_id", sort=False):
        x += [*run["epoch"].tolist(), np.nan]
        y += [*(100 * run["val_acc"]).tolist(), np.nan]
    return x, y


def _complexity_figure(minimal: pd.DataFrame, datasets: list[str]) -> go.Figure:
    """P_min per family along datasets ordered from easy to hard, with its interval."""
    fig = go.Figure()
    for family, group in minimal.groupby("family", sort=True):
        group = group.set_index("dataset").reindex(datasets)
        edges = group["p_min_edge"].fillna("not_reached")
        # not reached: drawn at the largest size tested, marked as beyond it
        p = group["p_min"].fillna(group["largest_params"]).to_numpy(float)
        fig.add_scatter(
            x=[escape(style.dataset_title(d)) for d in datasets],
            y=p,
            customdata=[
                escape(bound(v, edge, largest))
                for v, edge, largest in zip(
                    group["p_min"], edges, group["largest_params"], strict=True
                )
            ],
            error_y={
                "type": "data",
                "symmetric": False,
                "array": group["p_min_high"].to_numpy(float) - p,  # NaN: no bar
                "arrayminus": p - group["p_min_low"].to_numpy(float),
                "thickness": 1.2,
                "color": style.family_color(family),
            },
            mode="markers",  # datasets are categories: nothing lies between them
            name=escape(str(family)),
            marker={
                "color": style.family_color(family),
                "symbol": [EDGE_SYMBOLS.get(edge, family_symbol(family)) for edge in edges],
                "size": 9,
            },
            hovertemplate="%{x}<br>P_min %{customdata}<extra></extra>",
        )
    style.styled(
        fig,
        title=(
            "Minimal learnable parameters vs dataset (▼ ≤ the smallest size tested, "
            "▲ ≥ the largest, ↑ not reached: > the largest)"
        ),
        x_title="Dataset (easy to hard)",
        y_title="P_min (parameters, log scale)",
    )
    bounds = minimal[["p_min_low", "p_min", "p_min_high", "largest_params"]].to_numpy(float).ravel()
    style.log_axis(fig, bounds, axis="y")
    return fig
