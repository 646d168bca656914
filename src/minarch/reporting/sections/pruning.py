"""Pruning sensitivity and phases (docs/methods.md A.3).

How much of each trained model can go before its accuracy moves (R_δ), where
it degrades and where it collapses to chance, and whether deeper or larger
models have more to spare.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from minarch.analysis.compression import CURVE, compression_rows
from minarch.analysis.difficulty import in_order
from minarch.analysis.pruning import (
    layer_widths,
    phases,
    pruning_curves,
    redundancy,
    redundancy_trend,
)
from minarch.analysis.selection import chosen_configurations, in_configurations
from minarch.reporting import findings, style
from minarch.reporting.prose import describe_redundancy_trend
from minarch.reporting.section import Figure, ReportInput, Section, slugify
from minarch.spec.schema import AnalysisSpec

PIPELINE_DASHES = {"oneshot": "solid", "finetune": "dash", "retrain": "dot", "imp": "dashdot"}
PHASE_SYMBOLS = {"plateau": "circle", "degradation": "circle-open", "collapse": "x"}
METHOD_SYMBOLS = {
    "unstructured-global": "circle",
    "unstructured-layer": "square",
    "structured-uniform": "diamond",
    "structured-global": "triangle-up",
    "weights-channel": "circle",
    "weights-tensor": "square",
    "weights+acts-channel": "diamond",
    "weights+acts-tensor": "triangle-up",
}
_HOVER = (
    "<b>%{customdata[0]}</b><br>%{customdata[1]}<br>%{x:.1f} %: val. acc. %{y:.2f}%"
    "<br>%{customdata[2]}<extra></extra>"
)


def section_rows(data: ReportInput, kind: str) -> tuple[pd.DataFrame, AnalysisSpec] | None:
    """The ``kind`` rows of each model's chosen configuration, and the thresholds; None if none.

    The chosen configuration is the one the regimes section shows (``selection``),
    picked from the study's runs, not from how well it compresses.
    """
    frame = data.compression
    if frame is None or frame.empty:
        return None
    rows = compression_rows(frame, kind)
    if rows.empty:
        return None
    thresholds = data.study.analysis if data.study is not None else AnalysisSpec()
    chosen = in_configurations(rows, chosen_configurations(data.runs))
    return (chosen, thresholds) if len(chosen) else None


def pruning_sensitivity(data: ReportInput) -> Section | None:
    """Accuracy against sparsity and FLOPs, R_δ per model, phases and the depth trend."""
    chosen = section_rows(data, "prune")
    if chosen is None:
        return None
    rows, t = chosen
    curves = pruning_curves(rows)
    if curves.empty:
        return None
    found = phases(rows, delta=t.prune_delta, collapse_margin=t.collapse_margin)
    table = redundancy(rows, delta=t.prune_delta)
    trend = redundancy_trend(table)
    widths = layer_widths(rows)
    colors = style.model_colors(curves)
    thickness = style.model_widths(curves)
    parts: list[str | Figure] = [_definitions(t, given=data.study is not None)]
    for dataset in in_order(curves["dataset"], data.dataset_order):
        name, slug = escape(style.dataset_title(dataset)), slugify(dataset)
        points = found.points[found.points["dataset"] == dataset]
        bounds = found.boundaries[found.boundaries["dataset"] == dataset]
        here = table[table["dataset"] == dataset]
        parts.append(f"<h3>{name}</h3>")
        for structured, kind in ((False, "unstructured"), (True, "structured")):
            shown = points[points["structured"] == structured]
            if not shown.empty:
                fig = _curve_figure(shown, bounds, (colors, thickness), name, structured=structured)
                parts.append(Figure(f"pruning-{kind}-{slug}", fig))
        parts.append(_redundancy_table(here, bounds))
        parts.append(Figure(f"pruning-redundancy-{slug}", _trend_figure(here, name, t)))
        sentences = describe_redundancy_trend(trend[trend["dataset"] == dataset], t)
        if sentences:
            items = "".join(f"<li>{escape(s)}</li>" for s in sentences)
            parts.append(f"<p>Trend (one point per model):</p><ul>{items}</ul>")
        if not widths.empty:
            parts += _widths_tables(widths[widths["dataset"] == dataset])
    sentences = findings.pruning(table, curves, t.prune_delta, data.dataset_order)
    return Section("Pruning sensitivity and phases", tuple(parts), tuple(sentences))


# --- shared with the quantization section ---------------------------------------------------


def html_table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A summary table; ``head`` is plain text (escaped here), cells are escaped HTML."""
    header = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f'<table class="summary"><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>'


def none_for_nan(values: Iterable[float]) -> list[float | None]:
    """Plotly draws no error bar for None; a NaN std (one seed) must become one."""
    return [float(v) if np.isfinite(v) else None for v in np.asarray(list(values), float)]


def parameters(value: float) -> str:
    return f"{int(value):,}" if np.isfinite(value) else "—"


def depth(value: float) -> str:
    return f"{value:g}" if np.isfinite(value) else "—"


def setting_cells(row) -> tuple[str, ...]:
    """The cells that open every pruning and quantization table row: which model, how."""
    return (
        escape(row.model),
        escape(row.family),
        depth(row.depth),
        parameters(row.params),
        escape(row.method),
        escape(row.pipeline),
    )


# --- this section ----------------------------------------------------------------------------


def _definitions(t: AnalysisSpec, *, given: bool) -> str:
    source = "the study's thresholds" if given else "the default thresholds"
    delta, margin = 100 * t.prune_delta, 100 * t.collapse_margin
    items = (
        "Drop: the uncompressed parent's final validation accuracy minus the pruned model's.",
        "Compression: sparsity (fraction of prunable weights removed) for unstructured "
        "methods; the fraction of FLOPs removed, 1 − FLOPs remaining, for structured ones.",
        f"R_δ with δ = {delta:g} pp: per seed, the largest grid compression such that every grid "
        f"point up to it drops at most {delta:g} pp (the plateau edge; a later point that "
        "recovers does not count). 0 when the first grid point already drops more.",
        f"Phases on the seed-mean curve: plateau up to its plateau edge; collapse from the first "
        f"point whose accuracy is at most chance + {margin:g} % of (1 − chance), and every "
        "point after it; degradation in between.",
        "One configuration per model: the learning rate and weight decay whose parents have the "
        "best mean accuracy. Error bars: standard deviation over seeds.",
    )
    lines = "".join(f"<li>{escape(line)}</li>" for line in items)
    return f"<p>Definitions (docs/methods.md A.3) with {source}:</p><ul>{lines}</ul>"


def _curve_figure(
    points: pd.DataFrame,
    bounds: pd.DataFrame,
    looks: tuple[dict[tuple[str, str, str], str], dict[tuple[str, str, str], float]],
    dataset: str,
    *,
    structured: bool,
) -> go.Figure:
    """One panel per method, a line per (model, pipeline), markers by phase.

    A model's line has its colour and width (``looks``); its pipeline, a dash pattern.
    """
    colors, thickness = looks
    methods = sorted(points["method"].unique())
    fig = make_subplots(
        rows=1,
        cols=len(methods),
        shared_yaxes=True,
        subplot_titles=[escape(m) for m in methods],
    )
    shown: set[tuple[str, str]] = set()
    order = points.sort_values(["params", "model", "pipeline", "compression"], kind="stable")
    for col, method in enumerate(methods, start=1):
        for (model, pipeline), curve in order[order["method"] == method].groupby(
            ["model", "pipeline"], sort=False
        ):
            first = curve.iloc[0]
            x = curve["flops_remaining"] if structured else curve["compression"]
            x = [100.0 if structured else 0.0, *(100 * x.to_numpy(float))]
            y = [100 * first["base_acc"], *(100 * curve["acc_mean"].to_numpy(float))]
            label = f"{escape(model)} · {escape(pipeline)}"
            detail = [
                f"{n} seed{'s' if n != 1 else ''}, parameter sparsity {100 * s:.1f} %"
                for n, s in zip(curve["n_seeds"], curve["sparsity"], strict=True)
            ]
            fig.add_scatter(
                x=x,
                y=y,
                error_y={
                    "array": none_for_nan([np.nan, *(100 * curve["acc_std"].to_numpy(float))]),
                    "thickness": 1.2,
                },
                mode="lines+markers",
                name=label,
                legendgroup=label,
                showlegend=(model, pipeline) not in shown,
                line={
                    "color": colors[(first["dataset"], first["family"], model)],
                    "dash": PIPELINE_DASHES.get(pipeline, "longdash"),
                    "width": thickness[(first["dataset"], first["family"], model)],
                },
                marker={
                    "size": 8,
                    "symbol": ["square", *(PHASE_SYMBOLS[p] for p in curve["phase"])],
                },
                customdata=np.column_stack(
                    [
                        [label] * len(x),
                        ["unpruned", *curve["phase"]],
                        ["parent, mean over seeds", *detail],
                    ]
                ),
                hovertemplate=_HOVER,
                row=1,
                col=col,
            )
            shown.add((model, pipeline))
    style.chance_line(fig, float(points["chance"].max()), row="all", col="all")
    thresholds = bounds["collapse_threshold"].dropna()
    if len(thresholds):
        fig.add_hline(
            y=100 * float(thresholds.max()),
            line={"color": "#777", "dash": "dot", "width": 1},
            annotation_text="collapse threshold",
            annotation_position="bottom left",
            row="all",
            col="all",
        )
    what = "FLOPs remaining" if structured else "sparsity"
    style.styled(
        fig,
        title=f"{dataset}: accuracy vs {what} ({'structured' if structured else 'unstructured'})",
        x_title="FLOPs remaining (%)" if structured else "Sparsity (% of prunable weights removed)",
        y_title="Validation accuracy (%)",
    )
    fig.update_layout(legend_title_text="Model · pipeline")
    for col in range(2, len(methods) + 1):
        fig.update_xaxes(title_text=None, col=col)
        fig.update_yaxes(title_text=None, col=col)
    if structured:
        fig.update_xaxes(autorange="reversed")
    return fig


def _redundancy_table(table: pd.DataFrame, bounds: pd.DataFrame) -> str:
    head = (
        "Model",
        "Family",
        "Depth",
        "Parameters",
        "Method",
        "Pipeline",
        "Measured as",
        "R_δ (%) mean ± std",
        "R_δ range (%)",
        "Parameter sparsity at R_δ (%)",
        "Seeds (whole grid within δ)",
        "Mean-curve plateau end (%)",
        "Collapse from (%)",
    )
    merged = table.merge(
        bounds[[*CURVE, "plateau_end", "collapse_start"]], on=CURVE, how="left"
    ).sort_values(["family", "params", "model", "method", "pipeline"], kind="stable")
    rows = []
    for row in merged.itertuples(index=False):
        rows.append(
            (
                *setting_cells(row),
                escape(row.measure),
                style.percent(row.r_mean, row.r_std),
                f"{style.percent(row.r_min)} – {style.percent(row.r_max)}",
                style.percent(row.sparsity_at_r),
                f"{row.n_seeds} ({row.n_whole_grid})",
                style.percent(row.plateau_end),
                style.percent(row.collapse_start) if np.isfinite(row.collapse_start) else "none",
            )
        )
    return html_table(head, rows)


def _trend_figure(table: pd.DataFrame, dataset: str, t: AnalysisSpec) -> go.Figure:
    """R_δ against depth (left, when known) and parameter count (right, log scale)."""
    has_depth = bool(np.isfinite(table["depth"].astype(float)).any())
    panels = ["vs depth", "vs parameters"] if has_depth else ["vs parameters"]
    fig = make_subplots(rows=1, cols=len(panels), shared_yaxes=True, subplot_titles=panels)
    keys = ["family", "method", "pipeline"]
    for (family, method, pipeline), group in table.groupby(keys, sort=True):
        label = f"{escape(family)} · {escape(method)} · {escape(pipeline)}"
        for col, x in enumerate(["depth", "params"][-len(panels) :], start=1):
            line = group[np.isfinite(group[x].astype(float))].sort_values(x)
            fig.add_scatter(
                x=line[x],
                y=100 * line["r_mean"],
                error_y={"array": none_for_nan(100 * line["r_std"]), "thickness": 1.2},
                mode="lines+markers",
                name=label,
                legendgroup=label,
                showlegend=col == 1,
                line={
                    "color": style.family_color(family),
                    "dash": PIPELINE_DASHES.get(pipeline, "longdash"),
                    "width": 1.5,
                },
                marker={"size": 9, "symbol": METHOD_SYMBOLS.get(method, "star")},
                customdata=line["model"].map(escape),
                hovertemplate=("<b>%{customdata}</b><br>%{x:,}<br>R_δ %{y:.1f} %<extra></extra>"),
                row=1,
                col=col,
            )
    style.styled(
        fig,
        title=f"{dataset}: redundancy R_δ (δ = {100 * t.prune_delta:g} pp)",
        x_title="Depth" if has_depth else "Parameters (count, log scale)",
        y_title="R_δ (% sparsity or FLOPs removed)",
    )
    fig.update_layout(legend_title_text="Family · method · pipeline")
    style.log_axis(fig, table["params"].astype(float), col=len(panels))
    if has_depth:
        fig.update_xaxes(title_text="Parameters (count, log scale)", col=2)
        fig.update_yaxes(title_text=None, col=2)
    return fig


def _widths_tables(widths: pd.DataFrame) -> list[str]:
    """Per model, kept channels per layer for each structured method and FLOPs target."""
    if widths.empty:
        return []
    targets = [col[: -len(": kept")] for col in widths.columns if col.endswith(": kept")]
    parts = [
        "<p>Kept channels per layer (mean over seeds; fraction of the unpruned width), "
        "uniform against global structured pruning:</p>"
    ]
    for (family, model), layers in widths.groupby(["family", "model"], sort=False):
        used = [x for x in targets if layers[f"{x}: kept"].notna().any()]
        rows = []
        for row in layers.to_dict("records"):
            cells = [escape(str(row["layer"])), f"{row['base_width']:g}"]
            for x in used:
                kept, fraction = row[f"{x}: kept"], row[f"{x}: fraction"]
                cells.append(f"{kept:.1f} ({100 * fraction:.0f} %)" if np.isfinite(kept) else "—")
            rows.append(cells)
        head = ["Layer", "Unpruned width", *(f"{x} FLOPs" for x in used)]
        parts += [f"<h4>{escape(model)} ({escape(family)})</h4>", html_table(head, rows)]
    return parts
