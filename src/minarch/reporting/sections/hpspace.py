"""The hyperparameter space under pruning (docs/methods.md B.4-B.9, thesis Figs 4.1-4.5).

Whether a pruned model still wants the unpruned model's learning rate and
weight decay: its accuracy surface on the (log10 wd, log10 lr) grid with the
ROI ellipses, the cost of not retuning, and thesis Tables 4.1 and 4.2.
"""

from __future__ import annotations

from html import escape

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from minarch.analysis.hpspace import (
    AXES,
    GROUP,
    RUN_INPUT,
    Ellipse,
    HpSpaceResult,
    gridded,
    hpspace_tables,
    roi_column,
)
from minarch.reporting import findings, style
from minarch.reporting.prose import verdict
from minarch.reporting.section import Figure, ReportInput, Section, slugify

TOP_FRACTION = 0.15
"""The colour scale spans the best 15 % of a model's observations; lower ones clip."""
COLORSCALE = "Viridis"
ELLIPSE_LINES = ({"color": "black", "width": 2.5}, {"color": "white", "width": 2.5})
"""The narrowest ROI's ellipse black, the next white (on a dark casing); others dashed grey."""
VARIANT_COLORS = ("#555555", "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")
_HOVER = (
    "lr %{customdata[4]}<br>weight decay %{customdata[3]}<br>f %{customdata[0]:.2f}% "
    "± %{customdata[1]:.2f}<br>%{customdata[2]} seed(s)<extra></extra>"
)
MAX_TICKS = 6


def hyperparameter_space(data: ReportInput) -> Section | None:
    """Per model: surfaces with ROI ellipses per variant, risk box plots, Tables 4.1-4.2.

    Shown only for runs with a ``variant`` column and a model whose unpruned
    variant was trained on at least 2 learning rates and 2 weight decays.
    """
    runs, study = data.runs, data.study
    if any(column not in runs.columns for column in RUN_INPUT):
        return None
    if runs[["lr", "weight_decay"]].nunique().min() < 2:
        return None  # no model can have a grid, and the tables cost a second to find that
    rois = tuple(study.analysis.roi) if study is not None else (0.5, 1.0)
    n_sde = study.analysis.ellipse_sde if study is not None else 2.0
    result = hpspace_tables(runs, rois=rois, n_sde=n_sde)
    models = _gridded_models(result)
    if not models:
        return None
    source = "the study's" if study is not None else "the default"
    items = "".join(f"<li>{escape(line)}</li>" for line in result.definitions)
    parts: list[str | Figure] = [
        f"<p>Definitions (docs/methods.md B.4–B.9) with {source} thresholds:</p><ul>{items}</ul>"
    ]
    slugs: set[str] = set()
    for key in models:
        dataset, _, base = key
        name = f"{escape(str(base))} on {escape(style.dataset_title(dataset))}"
        ellipses = _rows(result.ellipses, key)
        parts.append(f"<h3>{name}</h3>")
        for variant, figure in _surface_figures(result, key, name):
            parts.append(Figure(_unique(slugs, "hpspace", dataset, base, variant), figure))
        if not _rows(result.risk_points, key).empty:
            risk = _risk_figure(result, key, name)
            parts.append(Figure(_unique(slugs, "hpspace-risk", dataset, base), risk))
        parts += [
            "<p>Table 4.1: best configuration and ROI ellipses (lengths and widths in "
            "decades, i.e. log10 units).</p>",
            _ellipse_table(ellipses, result.rois),
        ]
        if not _rows(result.risk, key).empty:
            parts += [
                f"<p>Table 4.2: risk of reusing the {escape(result.reference)} model's "
                f"{_width(result.risk_roi)}-ROI.</p>",
                _risk_table(_rows(result.risk, key)),
            ]
        parts.append(f"<p>{escape(verdict(result, dataset, base))}</p>")
    sentences = tuple(findings.hpspace(result, key) for key in models)
    return Section("Hyperparameter space under pruning", tuple(parts), sentences)


def _gridded_models(result: HpSpaceResult) -> list[tuple]:
    """(dataset, family, base model) whose reference surface spans 2 × 2 or more."""
    surfaces = result.surfaces[result.surfaces["variant"] == result.reference]
    return gridded(surfaces, GROUP, lr="log_lr", wd="log_wd")


def _rows(table: pd.DataFrame, key: tuple) -> pd.DataFrame:
    return table[table[GROUP].eq(list(key)).all(axis=1)]


def _unique(slugs: set[str], *words: object) -> str:
    """A slug from ``words``, numbered when another figure already took it."""
    base = slugify("-".join(slugify(w) for w in words))
    slug, n = base, 2
    while slug in slugs:
        slug, n = f"{base}-{n}", n + 1
    slugs.add(slug)
    return slug


def _surface_figures(result: HpSpaceResult, key: tuple, name: str) -> list[tuple]:
    """One figure per variant (contour left, observed points right) on a shared scale."""
    surfaces = _rows(result.surfaces, key)
    tables = _rows(result.ellipses, key).set_index("variant")
    f = surfaces["f"].to_numpy(float)
    zmin, zmax = float(np.percentile(f, 100 * (1 - TOP_FRACTION))), float(f.max())
    zmax = zmax if zmax - zmin > 1e-9 else zmin + 1.0
    colorbar = {"title": {"text": "f (%)"}, "tickformat": ".2f"}
    out = []
    ordered = sorted(surfaces["variant"].unique(), key=lambda v: (v != result.reference, str(v)))
    for variant in ordered:
        surf = surfaces[surfaces["variant"] == variant]
        fig = make_subplots(
            rows=1,
            cols=2,
            subplot_titles=("Accuracy contour", "Grid points"),
            shared_yaxes=True,
            horizontal_spacing=0.06,
        )
        grid = surf.pivot(index="log_lr", columns="log_wd", values="f")
        contour = min(grid.shape) >= 2  # a single row or column has no contour to draw
        if contour:
            fig.add_trace(_contour(grid, zmin, zmax, colorbar), row=1, col=1)
        fig.add_trace(
            go.Scatter(
                x=surf["log_wd"],
                y=surf["log_lr"],
                mode="markers",
                marker={
                    "color": np.clip(surf["f"].to_numpy(float), zmin, zmax),
                    "colorscale": COLORSCALE,
                    "cmin": zmin,
                    "cmax": zmax,
                    "size": 11,
                    "symbol": "square",
                    "line": {"width": 0.5, "color": "#444"},
                    "showscale": not contour,
                    "colorbar": colorbar,
                },
                customdata=np.column_stack(
                    [surf["f"], surf["f_std"], surf["seeds"], *(_numbers(surf[a]) for a in AXES)]
                ),
                hovertemplate=_HOVER,
                name="grid point",
                showlegend=False,
            ),
            row=1,
            col=2,
        )
        for col in (1, 2):
            _overlay(fig, result, tables.loc[variant], col)
        edges = tables.loc[variant, "edges"]
        bound = (
            f"<br><sup>its {_width(max(result.rois))}-ROI reaches the grid's edge "
            f"({escape(edges)}): θ* is a bound, the optimum may lie outside the grid</sup>"
            if edges
            else ""
        )
        style.styled(
            fig,
            title=f"{name}: {escape(str(variant))}{bound}",
            x_title="Weight decay (log scale)",
            y_title="Learning rate (log scale)",
        )
        _log_ticks(fig, "x", surfaces["log_wd"])
        _log_ticks(fig, "y", surfaces["log_lr"])
        fig.update_layout(
            # below the tick labels (numbers like 0.000631 may be set at an angle)
            legend={"title": {"text": ""}, "orientation": "h", "y": -0.3, "x": 0},
            legend_bgcolor="#d9d9d9",  # grey, so the white ellipse shows in the legend
            margin={"b": 130, "t": 100 if bound else 60},
        )
        fig.update_yaxes(title_text=None, col=2)
        fig.update_xaxes(matches="x", col=2)  # both panels show the same part of the plane
        out.append((variant, fig))
    return out


def _theta(row: pd.Series) -> str:
    lr, wd = (style.number(10 ** row[f"best_log_{axis}"]) for axis in ("lr", "wd"))
    return f"lr {lr}, weight decay {wd}"


def _numbers(log_values: pd.Series) -> list[str]:
    """log10 grid coordinates as the numbers a study file writes (0.003, not −2.52)."""
    return [style.number(10**v) for v in log_values.to_numpy(float)]


def _log_ticks(fig: go.Figure, axis: str, log_values: pd.Series) -> None:
    """Label a log10-coordinate axis with the grid's own values as numbers (at most MAX_TICKS)."""
    values = np.unique(log_values.to_numpy(float))
    values = values[:: -(-len(values) // MAX_TICKS)] if len(values) else values
    labels = _numbers(pd.Series(values))
    update = fig.update_xaxes if axis == "x" else fig.update_yaxes
    update(tickmode="array", tickvals=values, ticktext=labels)


def _contour(grid: pd.DataFrame, zmin: float, zmax: float, colorbar: dict) -> go.Contour:
    """Filled contours of f (rows log10 lr, columns log10 wd), clipped to the colour range."""
    return go.Contour(
        x=grid.columns.to_numpy(float),
        y=grid.index.to_numpy(float),
        z=np.clip(grid.to_numpy(float), zmin, zmax),
        colorscale=COLORSCALE,  # per trace: a shared coloraxis hangs kaleido's export
        zmin=zmin,
        zmax=zmax,
        colorbar=colorbar,
        connectgaps=True,  # interpolate over missing grid points; the scatter shows them
        contours={"start": zmin, "end": zmax, "size": (zmax - zmin) / 10},
        line={"width": 0.5},
        hoverinfo="skip",  # interpolated: the grid points panel shows the measured values
        name="f",
        showlegend=False,
    )


def _overlay(fig: go.Figure, result: HpSpaceResult, row: pd.Series, col: int) -> None:
    """Table 4.1's ROI ellipses and θ* on one panel (legend entries from the first panel only)."""
    for i, x in enumerate(sorted(result.rois)):
        fit = Ellipse.from_table(row, x, result.n_sde)
        if fit is None:
            continue
        wd, lr = fit.curve()
        line = ELLIPSE_LINES[i] if i < len(ELLIPSE_LINES) else {"color": "#777", "dash": "dash"}
        label = f"{_width(x)}-ROI ({result.n_sde:g}-SDE ellipse)"
        if line["color"] == "white":  # a dark casing keeps white visible on white paper
            casing = {"color": "#333", "width": line["width"] + 2}
            trace = go.Scatter(x=wd, y=lr, mode="lines", line=casing, showlegend=False)
            fig.add_trace(trace.update(hoverinfo="skip", legendgroup=label), row=1, col=col)
        trace = go.Scatter(x=wd, y=lr, mode="lines", line=line, name=label, legendgroup=label)
        fig.add_trace(trace.update(showlegend=col == 1, hoverinfo="skip"), row=1, col=col)
    fig.add_trace(
        go.Scatter(
            x=[row["best_log_wd"]],
            y=[row["best_log_lr"]],
            mode="markers",
            marker={"symbol": "star", "size": 16, "color": "#D55E00", "line": {"width": 1}},
            name="θ*",
            legendgroup="theta",
            showlegend=col == 1,
            text=[_theta(row)],
            hovertemplate="θ*<br>%{text}<extra></extra>",
        ),
        row=1,
        col=col,
    )


def _risk_figure(result: HpSpaceResult, key: tuple, name: str) -> go.Figure:
    """Box plots of d (pp) and d^R (%) per variant, every θ shown as a point."""
    points = _rows(result.risk_points, key)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("d (pp)", "d<sup>R</sup> (%)"))
    ordered = sorted(points["variant"].unique(), key=lambda v: (v != result.reference, str(v)))
    for i, variant in enumerate(ordered):
        here = points[points["variant"] == variant]
        color = VARIANT_COLORS[i % len(VARIANT_COLORS)]
        label = escape(str(variant))
        for col, values in ((1, here["d"]), (2, 100 * here["dR"])):
            box = go.Box(
                y=values,
                name=label,
                legendgroup=label,
                showlegend=False,
                boxpoints="all",
                jitter=0.4,
                pointpos=0,
                marker={"color": color, "size": 5},
                line={"color": color},
            )
            fig.add_trace(box, row=1, col=col)
    style.styled(
        fig,
        title=f"{name}: cost of reusing the {escape(result.reference)} model's "
        f"{_width(result.risk_roi)}-ROI",
        x_title="Variant",
        y_title="d (percentage points)",
    )
    fig.update_yaxes(title_text="d<sup>R</sup> (% of the variant's best f)", col=2)
    return fig


def _width(x: float) -> str:
    """A ROI width as the thesis writes it: 0.5, 1.0 (not 1)."""
    return f"{x:.1f}" if round(x, 1) == x else f"{x:g}"


def _number(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f}" if np.isfinite(value) else "—"


def _html_table(head: list[str], rows: list[tuple[str, ...]]) -> str:
    """Cells must already be escaped; headers are escaped here."""
    header = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="summary"><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>'


def _ellipse_table(ellipses: pd.DataFrame, rois: tuple[float, ...]) -> str:
    """Thesis Table 4.1: θ*, each ROI's ellipse, and the shift from the reference."""
    head = ["Variant", "Model", "Grid points", "Best f (%) ± seed std", "θ* learning rate"]
    head += ["θ* weight decay", "Ties"]
    for x in rois:
        name = f"{_width(x)}-ROI"
        head += [f"{name} points", f"{name} length (decades)", f"{name} width (decades)"]
        head += [f"{name} angle (°)"]
        head += [f"{name} centre (weight decay, lr)"]
    head += [f"{_width(max(rois))}-ROI at the grid's edge" if rois else "ROI at the grid's edge"]
    head += [f"Centre shift ({_width(max(rois))}-ROI)" if rois else "Centre shift", "θ* moved"]
    rows = []
    for row in ellipses.to_dict("records"):
        f = _number(row["best_f"])
        std = row["best_f_seed_std"]
        cells = [
            escape(str(row["variant"])),
            escape(str(row["model"])),
            str(row["grid_points"]),
            f"{f} ± {_number(std)}" if np.isfinite(std) else f,
            style.number(10 ** row["best_log_lr"]),
            style.number(10 ** row["best_log_wd"]),
            str(row["ties"]),
        ]
        for x in rois:
            centre = (row[roi_column(x, "centre_wd")], row[roi_column(x, "centre_lr")])
            cells += [
                str(row[roi_column(x, "points")]),
                _number(row[roi_column(x, "length")]),
                _number(row[roi_column(x, "width")]),
                _number(row[roi_column(x, "angle")], 0),
                f"({style.number(10 ** centre[0])}, {style.number(10 ** centre[1])})"
                if np.isfinite(centre[0])
                else "—",
            ]
        moved = row["optimum_moved"]
        cells += [
            f"yes ({escape(row['edges'])}): a bound" if row["touches_edge"] else "no",
            _number(row["shift"]),
            "—" if pd.isna(moved) else "yes" if moved else "no",
        ]
        rows.append(tuple(cells))
    return _html_table(head, rows)


def _risk_table(risk: pd.DataFrame) -> str:
    """Thesis Table 4.2: mean and population std of d (pp) and d^R (%)."""
    head = ["Variant", "Model", "ROI points used", "Missing on grid", "d mean (pp)"]
    head += ["d std (pp)", "d^R mean (%)", "d^R std (%)"]
    rows = [
        (
            escape(str(row["variant"])),
            escape(str(row["model"])),
            str(row["points"]),
            str(row["missing"]),
            _number(row["d_mean"], 3),
            _number(row["d_std"], 3),
            _number(100 * row["dR_mean"], 3),
            _number(100 * row["dR_std"], 3),
        )
        for row in risk.to_dict("records")
    ]
    return _html_table(head, rows)
