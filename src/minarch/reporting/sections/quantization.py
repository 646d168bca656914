"""Quantization robustness (docs/methods.md A.4).

How few bits each trained model keeps its accuracy with, whether small models
and hard datasets need more, what real int8 buys in size and latency, and how
pruning and quantization combine.
"""

from __future__ import annotations

from html import escape

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from minarch.analysis.compression import MODEL
from minarch.analysis.difficulty import in_order
from minarch.analysis.quantization import (
    FLOAT_CASTS,
    bits_trend,
    int8_comparison,
    minimal_bits,
    quantization_curves,
)
from minarch.reporting import findings, style
from minarch.reporting.prose import describe_bits_trend
from minarch.reporting.section import Figure, ReportInput, Section, slugify
from minarch.reporting.sections.pruning import (
    METHOD_SYMBOLS,
    html_table,
    none_for_nan,
    parameters,
    section_rows,
    setting_cells,
)
from minarch.spec.schema import AnalysisSpec

FP32_BITS = 32
CAST_SYMBOLS = {"fp16": "star", "bf16": "star-diamond"}
PIPELINE_DASHES = {"ptq": "solid", "qat": "dash", "int8": "dot"}
_HOVER = "<b>%{customdata[0]}</b><br>%{customdata[1]}<br>val. acc. %{y:.2f}%<extra></extra>"


def quantization_robustness(data: ReportInput) -> Section | None:
    """Accuracy against bits, minimal bits per model, its trends, int8, prune + quantize."""
    chosen = section_rows(data, "quant")
    if chosen is None:
        return None
    rows, t = chosen
    curves = quantization_curves(rows)
    table = minimal_bits(rows, delta=t.quant_delta)
    trend = bits_trend(table)
    int8 = int8_comparison(rows)
    colors = style.model_colors(curves) if not curves.empty else {}
    parts: list[str | Figure] = [_definitions(t, given=data.study is not None)]
    order = data.dataset_order
    datasets = in_order([*curves["dataset"], *int8["dataset"]], order)
    if len(datasets) > 1 and np.isfinite(trend.by_dataset["mean_bits"].astype(float)).any():
        parts.append(Figure("quant-bits-vs-dataset", _dataset_figure(trend.by_dataset, datasets)))
    sentences = describe_bits_trend(trend, order, t)
    if sentences:
        items = "".join(f"<li>{escape(s)}</li>" for s in sentences)
        parts.append(f"<p>Trends (one point per model):</p><ul>{items}</ul>")
    for dataset in datasets:
        name, slug = escape(style.dataset_title(dataset)), slugify(dataset)
        here = curves[curves["dataset"] == dataset]
        pure = here[(here["sparsity"] == 0) & (here["method"] != "int8")]  # int8: its table
        mins = table[(table["dataset"] == dataset) & (table["sparsity"] == 0)]
        parts.append(f"<h3>{name}</h3>")
        if not pure.empty:
            parts.append(Figure(f"quant-accuracy-{slug}", _bits_figure(pure, colors, name)))
        if not mins.empty:
            parts.append(_minimal_table(mins))
        if (mins["n_bits"] >= 2).any():
            fig = _params_figure(mins[mins["n_bits"] >= 2], name, t)
            parts.append(Figure(f"quant-min-bits-{slug}", fig))
        int8_here = int8[int8["dataset"] == dataset]
        if not int8_here.empty:
            parts.append(_int8_table(int8_here))
        combined = _combined_figure(here, name)
        if combined is not None:
            parts.append(Figure(f"quant-pruned-{slug}", combined))
    return Section(
        "Quantization robustness", tuple(parts), tuple(findings.quantization(table, order))
    )


def _definitions(t: AnalysisSpec, *, given: bool) -> str:
    source = "the study's thresholds" if given else "the default thresholds"
    delta = 100 * t.quant_delta
    items = (
        "Drop: the unpruned float (fp32) parent's final validation accuracy minus the "
        "quantized model's; for a pruned-then-quantized model it includes the pruning's cost.",
        f"Minimal bits with δ = {delta:g} pp: the smallest tested bit width whose seed-mean "
        f"drop is at most {delta:g} pp and every wider tested width's is too; 'none' when even "
        "the widest tested fails.",
        "fp16 and bf16 are casts (16 bits) and int8 a real integer model: each is one width, "
        "tabled but left out of the trends. In trends, a model without a qualifying width "
        "ranks above every width.",
        "One configuration per model: the learning rate and weight decay whose parents have the "
        "best mean accuracy. Error bars: standard deviation over seeds.",
    )
    lines = "".join(f"<li>{escape(line)}</li>" for line in items)
    return f"<p>Definitions (docs/methods.md A.4) with {source}:</p><ul>{lines}</ul>"


def _bits_figure(curves: pd.DataFrame, colors: dict, dataset: str) -> go.Figure:
    """One panel per quantizer, a line per (model, pipeline) from fp32 down to 2 bits."""
    casts = curves[curves["method"].isin(FLOAT_CASTS)]
    lines = curves[~curves["method"].isin([*FLOAT_CASTS, "int8"])]
    methods = sorted(lines["method"].unique()) or ["fp16 / bf16"]
    fig = make_subplots(
        rows=1, cols=len(methods), shared_yaxes=True, subplot_titles=[escape(m) for m in methods]
    )
    shown: set[tuple[str, str]] = set()
    order = lines.sort_values(["params", "model", "pipeline", "bits"], ascending=[1, 1, 1, 0])
    for col, method in enumerate(methods, start=1):
        for (model, pipeline), curve in order[order["method"] == method].groupby(
            ["model", "pipeline"], sort=False
        ):
            first = curve.iloc[0]
            label = f"{escape(model)} · {escape(pipeline)}"
            color = colors[(first["dataset"], first["family"], model)]
            fig.add_scatter(
                x=[FP32_BITS, *curve["bits"]],
                y=[100 * first["base_acc"], *(100 * curve["acc_mean"])],
                error_y={
                    "array": none_for_nan([np.nan, *(100 * curve["acc_std"])]),
                    "thickness": 1.2,
                },
                mode="lines+markers",
                name=label,
                legendgroup=label,
                showlegend=(model, pipeline) not in shown,
                line={"color": color, "dash": PIPELINE_DASHES.get(pipeline, "longdash")},
                marker={"size": 8, "symbol": ["square", *["circle"] * len(curve)]},
                customdata=np.column_stack(
                    [
                        [label] * (len(curve) + 1),
                        ["fp32 parent", *(f"{b:g} bits" for b in curve["bits"])],
                    ]
                ),
                hovertemplate=_HOVER,
                row=1,
                col=col,
            )
            shown.add((model, pipeline))
        for cast in casts.itertuples(index=False):  # the same float casts in every panel
            label = f"{escape(cast.model)} · {escape(cast.method)}"
            fig.add_scatter(
                x=[cast.bits],
                y=[100 * cast.acc_mean],
                error_y={"array": none_for_nan([100 * cast.acc_std]), "thickness": 1.2},
                mode="markers",
                name=label,
                legendgroup=label,
                showlegend=col == 1,
                marker={
                    "size": 12,
                    "symbol": CAST_SYMBOLS.get(cast.method, "star"),
                    "color": colors[(cast.dataset, cast.family, cast.model)],
                    "line": {"width": 1, "color": "#222"},
                },
                customdata=[[label, f"{escape(cast.method)} cast ({escape(cast.pipeline)})"]],
                hovertemplate=_HOVER,
                row=1,
                col=col,
            )
    chance = curves["chance"].dropna()
    if len(chance):
        style.chance_line(fig, float(chance.iloc[0]), row="all", col="all")
    ticks = sorted({FP32_BITS, *curves["bits"].dropna().astype(float)}, reverse=True)
    style.styled(
        fig,
        title=f"{dataset}: accuracy vs bit width (■ fp32, ★ fp16, ◆ bf16)",
        x_title="Bits (log scale, fewer to the right)",
        y_title="Validation accuracy (%)",
    )
    fig.update_layout(legend_title_text="Model · pipeline")
    fig.update_xaxes(
        type="log", autorange="reversed", tickvals=ticks, ticktext=[f"{b:g}" for b in ticks]
    )
    for col in range(2, len(methods) + 1):
        fig.update_xaxes(title_text=None, col=col)
        fig.update_yaxes(title_text=None, col=col)
    return fig


def _minimal_table(table: pd.DataFrame) -> str:
    head = (
        "Model",
        "Family",
        "Depth",
        "Parameters",
        "Method",
        "Pipeline",
        "Bits tested",
        "Minimal bits",
        "Val. acc. at minimal bits (%)",
        "fp32 val. acc. (%)",
        "Seeds",
    )
    rows = []
    ordered = table.sort_values(["family", "params", "model", "method", "pipeline"], kind="stable")
    for row in ordered.itertuples(index=False):
        rows.append(
            (
                *setting_cells(row),
                escape(row.bits_tested),
                f"{row.min_bits:g}" if row.qualifies else "none",
                style.percent(row.acc_at_min),
                style.percent(row.base_acc),
                str(row.n_seeds),
            )
        )
    return html_table(head, rows)


def _params_figure(table: pd.DataFrame, dataset: str, t: AnalysisSpec) -> go.Figure:
    """Minimal bits against parameter count; models where none qualifies sit at 32 (open).

    Only quantizers tested at two or more widths: a cast has no curve to read.
    """
    fig = go.Figure()
    for (family, method, pipeline), group in table.groupby(
        ["family", "method", "pipeline"], sort=True
    ):
        group = group.sort_values("params")
        label = f"{escape(family)} · {escape(method)} · {escape(pipeline)}"
        symbol = METHOD_SYMBOLS.get(method, CAST_SYMBOLS.get(method, "star"))
        fig.add_scatter(
            x=group["params"],
            y=group["min_bits"].fillna(FP32_BITS),
            mode="lines+markers",
            name=label,
            line={
                "color": style.family_color(family),
                "dash": PIPELINE_DASHES.get(pipeline, "longdash"),
                "width": 1.5,
            },
            marker={
                "size": 10,
                "symbol": [symbol if q else f"{symbol}-open" for q in group["qualifies"]],
            },
            customdata=np.column_stack(
                [
                    group["model"].map(escape),
                    ["" if q else " (none qualifies)" for q in group["qualifies"]],
                ]
            ),
            hovertemplate=(
                "<b>%{customdata[0]}</b><br>params %{x:,}<br>minimal bits %{y}"
                "%{customdata[1]}<extra></extra>"
            ),
        )
    style.styled(
        fig,
        title=f"{dataset}: minimal bits (δ = {100 * t.quant_delta:g} pp) vs size",
        x_title="Parameters (count, log scale)",
        y_title="Minimal bits (32: none qualifies)",
    )
    fig.update_layout(legend_title_text="Family · method · pipeline")
    style.log_axis(fig, table["params"].astype(float))
    ticks = sorted({FP32_BITS, *table["bits_tested"].str.split(", ").explode().astype(float)})
    fig.update_yaxes(type="log", tickvals=ticks, ticktext=[f"{b:g}" for b in ticks])
    return fig


def _dataset_figure(by_dataset: pd.DataFrame, datasets: list[str]) -> go.Figure:
    """Mean minimal bits over qualifying models, datasets from easy to hard."""
    fig = go.Figure()
    for (family, method, pipeline), group in by_dataset.groupby(
        ["family", "method", "pipeline"], sort=True
    ):
        group = group.set_index("dataset").reindex(datasets)
        symbol = METHOD_SYMBOLS.get(method, "star")
        fig.add_scatter(
            x=[escape(style.dataset_title(d)) for d in datasets],
            y=group["mean_bits"],
            mode="markers",  # datasets are categories: nothing lies between them
            name=f"{escape(family)} · {escape(method)} · {escape(pipeline)}",
            marker={
                "size": 10,
                "color": style.family_color(family),
                # no lines to dash: quantization-aware training gets open markers
                "symbol": f"{symbol}-open" if pipeline == "qat" else symbol,
            },
            hovertemplate="%{x}<br>mean minimal bits %{y:.1f}<extra></extra>",
        )
    style.styled(
        fig,
        title="Minimal bits vs dataset",
        x_title="Dataset (easy to hard)",
        y_title="Mean minimal bits over models",
    )
    fig.update_layout(legend_title_text="Family · method · pipeline")
    return fig


def _int8_table(table: pd.DataFrame) -> str:
    head = (
        "Model",
        "Family",
        "Parameters",
        "Seeds",
        "fp32 val. acc. (%)",
        "int8 val. acc. (%)",
        "Simulated w8a8 val. acc. (%)",
        "fp32 size (bytes)",
        "int8 size (bytes)",
        "Size ratio",
        "fp32 latency (ms)",
        "int8 latency (ms)",
        "Speed-up",
    )
    rows = []
    for row in table.sort_values(["family", "params", "model"], kind="stable").itertuples():
        rows.append(
            (
                escape(row.model),
                escape(row.family),
                parameters(row.params),
                str(row.n_seeds),
                style.percent(row.acc_fp32),
                style.percent(row.acc_int8),
                style.percent(row.acc_simulated),
                parameters(row.size_fp32),
                parameters(row.size_int8),
                _number(row.size_ratio, "{:.2f}"),
                _number(row.latency_fp32, "{:.3g}"),
                _number(row.latency_int8, "{:.3g}"),
                _number(row.speedup, "{:.2f}×"),
            )
        )
    return "<p>Real int8 against the float model:</p>" + html_table(head, rows)


def _combined_figure(curves: pd.DataFrame, dataset: str) -> go.Figure | None:
    """Accuracy over (sparsity, bits) for the model and quantizer pruned at the most sparsities.

    Its unpruned quantized rows are the 0 % row, so the map starts from plain quantization.
    """
    casts = curves["method"].isin([*FLOAT_CASTS, "int8"])
    keys = [*MODEL, "lr", "weight_decay", "method", "pipeline"]
    pruned = curves[~casts & (curves["sparsity"] > 0)]
    if pruned.empty:
        return None
    counts = pruned.groupby(keys, dropna=False, sort=True).size()
    pick = counts.index[int(np.argmax(counts.to_numpy()))]
    chosen = curves.set_index(keys).loc[[pick]].reset_index()
    grid = chosen.pivot_table(index="sparsity", columns="bits", values="acc_mean")
    grid = grid.sort_index().sort_index(axis=1, ascending=False)
    z = 100 * grid.to_numpy(float)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[f"{b:g}" for b in grid.columns],
            y=[f"{100 * s:g} %" for s in grid.index],
            text=[[f"{v:.1f}" if np.isfinite(v) else "" for v in line] for line in z],
            texttemplate="%{text}",
            colorscale="Viridis",
            colorbar={"title": {"text": "Val. acc. (%)"}},
            hovertemplate="sparsity %{y}, %{x} bits<br>val. acc. %{z:.2f}%<extra></extra>",
        )
    )
    model, method, pipeline = (
        escape(str(chosen[k].iloc[0])) for k in ("model", "method", "pipeline")
    )
    style.styled(
        fig,
        title=f"{dataset}: {model}, {method} ({pipeline}) after pruning",
        x_title="Bits",
        y_title="Sparsity before quantization",
    )
    fig.update_xaxes(type="category")
    fig.update_yaxes(type="category")
    return fig


def _number(value: float, fmt: str) -> str:
    return fmt.format(value) if np.isfinite(value) else "—"
