"""Tables as a person reads them in a terminal: chosen columns, short headers, units.

Machine formats (CSV, JSON, parquet) keep the frames as they are, accuracies as
fractions; here accuracies read in percent, differences of accuracy in
percentage points, missing values as "none", counts as integers. A compact
view per analysis table fits an 80-column terminal; the wide one shows every
column under its own name.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from numbers import Integral, Real
from typing import Any

import pandas as pd
from rich import box
from rich.console import Console
from rich.table import Table

from minarch.analysis.minimal import bound
from minarch.lazy import resolve
from minarch.tables import View, analysis_table

PERCENT = {
    "best_acc", "accuracy_bar", "acc_mean", "final_val_acc", "best_val_acc", "final_train_acc",
    "acc_at_min", "base_acc", "acc_fp32", "acc_int8", "acc_simulated", "chance",
    "collapse_threshold", "stability", "reached_fraction", "r_mean", "r_min", "r_max",
    "sparsity", "sparsity_at_r", "compression", "plateau_end", "collapse_start",
    "flops_remaining", "val_acc", "base_val_acc",
}  # fmt: skip
"""Fractions shown in percent: accuracies, stabilities, sparsities, FLOPs fractions."""
POINTS = {"acc_std", "seed_spread", "drop_mean", "drop_std", "drop_at_min", "r_std"}
"""Differences and spreads of fractions, shown in percentage points."""
IN_PERCENT = {"best_f": "%", "best_f_seed_std": "pp", "d_mean": "pp", "d_std": "pp"}
"""Columns already in percent (the hyperparameter space's f), with their unit."""
INTEGERS = {
    "params", "flops", "seed", "best_epoch", "epochs", "depth", "bits", "min_bits", "p_min",
    "p_min_low", "p_min_high", "p_over", "grid_points", "ties", "points", "missing",
    "env.threads", "env.workers", "round", "params_after", "flops_after",
}  # fmt: skip
"""Whole numbers that pandas turns into floats as soon as one value is missing."""


def print_analysis(console: Console, frame: pd.DataFrame, table: str, *, wide: bool) -> None:
    """Analysis ``table`` (``minarch.table``'s frame), its thresholds and selection notes."""
    entry = analysis_table(table)
    thresholds = frame.attrs["thresholds"]
    if wide:
        print_frame(console, whole_numbers(frame), title=table)
    else:
        keys = [key for key in ("study", "dataset") if key in frame]
        for key, part in frame.groupby(keys, sort=False) if keys else [((), frame)]:
            title = " · ".join(str(k) for k in (table, *(key if keys else ())))
            study = part["study"].iloc[0] if "study" in part else None
            view = _view(part, entry.view, thresholds.get(study, {}))
            print_frame(console, whole_numbers(view), title=title)
    print_thresholds(console, thresholds, None if wide else entry.thresholds)
    for name, note in frame.attrs["notes"].items():
        console.print(f"{name}: {note}", highlight=False)


def _view(frame: pd.DataFrame, view: View, thresholds: Mapping[str, Any]) -> pd.DataFrame:
    """The compact view of one study's (and dataset's) rows of an analysis table."""
    frame = frame.copy()
    if "chosen" in frame:
        frame = frame[frame["chosen"].astype(bool)]
    if view.prepare:
        frame = resolve(view.prepare)(frame, thresholds)
    columns = {column: head for column, head in view.columns.items() if column in frame}
    shown = frame[list(columns)].rename(columns=columns)
    shown.attrs["shown_from"] = {head: column for column, head in columns.items()}
    return shown


def minimal_view(frame: pd.DataFrame, thresholds: Mapping[str, Any]) -> pd.DataFrame:
    """The ``minimal`` view: P_stable and P_min as bounds where they are (≤, ≥, not
    reached), P_min's bootstrap interval as one "low–high" column, P_over marked
    where the regimes interleave."""
    low, high = (frame[c].map(lambda v: cell("p_min", v)) for c in ("p_min_low", "p_min_high"))
    bounds = {
        f"{name}_bound": [
            bound(v, edge, largest)
            for v, edge, largest in zip(
                frame[name], frame[f"{name}_edge"], frame["largest_params"], strict=True
            )
        ]
        for name in ("p_stable", "p_min")
    }
    p_over = frame["p_over"].map(lambda v: cell("p_over", v))
    interleaved = p_over + " (interleaved)"
    return frame.assign(
        p_min_interval=low + "–" + high,
        p_over=p_over.where(~frame["interleaved"].astype(bool), interleaved),
        **bounds,
    )


def widest_roi(frame: pd.DataFrame, thresholds: Mapping[str, Any]) -> pd.DataFrame:
    """The ``ellipses`` view: the best point as rates, and the ellipse of the widest ROI."""
    from minarch.analysis.hpspace import roi_column  # only this view needs the thesis part

    widest = max(thresholds["roi"])
    stats = ("points", "length", "width")
    return frame.assign(
        best_lr=10 ** frame["best_log_lr"],
        best_wd=10 ** frame["best_log_wd"],
        widest_roi=f"{widest:g}",
        **{f"widest_{stat}": frame[roi_column(widest, stat)] for stat in stats},
    )


def print_thresholds(
    console: Console,
    thresholds: Mapping[str, Mapping[str, Any]],
    fields: Sequence[str] | None = None,
) -> None:
    """The ``analysis:`` values each study was analysed with: one row per field.

    ``fields`` are those a table reads; None prints them all.
    """
    if fields is None:
        fields = list(next(iter(thresholds.values()), {}))
    if not fields:
        return
    out = Table(title="thresholds", box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    out.add_column("analysis:")
    for study in thresholds:
        out.add_column(study, justify="right")
    for field in fields:
        out.add_row(field, *(_threshold(values.get(field)) for values in thresholds.values()))
    console.print(out)


def _threshold(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {v:g}" for k, v in value.items()) or "none"
    if isinstance(value, list | tuple):
        return ", ".join(f"{v:g}" for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def print_frame(console: Console, frame: pd.DataFrame, title: str | None = None) -> None:
    """A DataFrame as a terminal table, numbers right-aligned and in their units.

    A table wider than the terminal would have every cell cut to a few
    characters, so it is printed as one block of (column, value) per row
    instead, like psql's expanded display. Piped output (stdout not a
    terminal) keeps one line per row, however wide, for grep, less -S and diff.
    """
    shown_from = frame.attrs.get("shown_from", {})  # a view's header -> its column
    sources = [shown_from.get(column, column) for column in frame.columns]
    rows = [
        [cell(source, value) for source, value in zip(sources, row, strict=True)]
        for row in frame.itertuples(index=False)
    ]
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    for column in frame.columns:
        numeric = frame[column].dtype.kind in "iuf"
        table.add_column(str(column), justify="right" if numeric else "left", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    unlimited = console.options.update_width(sys.maxsize)
    width = console.measure(table, options=unlimited).maximum
    if width <= console.width:
        console.print(table)
        return
    if not console.is_terminal:
        Console(file=console.file, width=width, color_system=None).print(table)
        return
    for number, row in enumerate(rows, start=1):
        block = Table(
            title=f"{title} · row {number}" if title else f"row {number}",
            title_justify="left",
            show_header=False,
        )
        block.add_column(style="bold")
        block.add_column()
        for column, value in zip(frame.columns, row, strict=True):
            block.add_row(str(column), value)
        console.print(block)


def cell(column: str, value: Any) -> str:
    """One value of ``column`` as text: percent, points, integers, "none" for missing."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if not isinstance(value, Real):
        return str(value)
    if column in PERCENT:
        return f"{100 * value:.4g} %"
    if column in POINTS:
        return f"{100 * value:.3g} pp"
    if column in IN_PERCENT:
        return f"{value:.4g} {IN_PERCENT[column]}"
    if column in INTEGERS or isinstance(value, Integral):
        return f"{value:,.0f}" if float(value).is_integer() else f"{value:.4g}"
    return f"{value:.4g}"


def whole_numbers(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its whole-number float columns as integers ("3", not "3.0").

    Those are the ``INTEGERS`` columns, and the ``config.*`` columns of a runs
    table that pandas made float because a value is missing (a family's size
    field on another family's rows); a config column without gaps kept its type.
    """
    frame = frame.copy()
    for column in frame.columns:
        series = frame[column]
        present = series.dropna()
        whole = series.dtype.kind == "f" and (present == present.round()).all()
        gaps = column.startswith("config.") and series.isna().any()
        if whole and (column in INTEGERS or gaps):
            frame[column] = series.astype("Int64")
    return frame


def duration(seconds: float) -> str:
    """A time a person reads at a glance: '42 s', '17 min', '3 h 05 min'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"
