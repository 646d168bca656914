"""The numbers behind the figures, one table per dataset, for copying into a paper."""

from __future__ import annotations

from html import escape

import pandas as pd

from minarch.analysis import summary
from minarch.analysis.difficulty import in_order
from minarch.analysis.selection import selection_note, validated_on_test
from minarch.reporting import style
from minarch.reporting.section import ReportInput, Section
from minarch.store import code_versions

_HEADER = (
    "Architecture",
    "Family",
    "Parameters",
    "FLOPs (forward, per sample)",
    "Learning rate",
    "Weight decay",
    "Seeds (done)",
    "Final val. acc. (%) mean ± std",
    "Diverged",
)


def summary_tables(data: ReportInput) -> Section | None:
    """Per dataset, one row per architecture with its chosen configuration.

    The accuracy is the mean final validation accuracy over all the
    configuration's seeds, a diverged seed at chance (diverged seeds are
    counted in "Seeds", not in "done").
    """
    runs = data.runs
    archs = summary.architectures(runs)
    if archs.empty:
        return None
    notes = [selection_note(validated_on_test(runs)), versions_note(runs)]
    parts = [f'<p class="note">{escape(note)}</p>' for note in notes if note]
    for dataset in in_order(archs["dataset"], data.dataset_order):
        group = archs[archs["dataset"] == dataset]
        parts += [f"<h3>{escape(style.dataset_title(dataset))}</h3>", _table(group)]
    return Section("Summary", tuple(parts))


def versions_note(runs: pd.DataFrame) -> str | None:
    """One line naming the versions of minarch when more than one trained the runs."""
    counts = code_versions(runs)
    if len(counts) < 2:
        return None
    each = "; ".join(f"{version}: {n} runs" for version, n in counts.items())
    return (
        f"Mixed versions: {len(counts)} versions of minarch trained these runs ({each}). "
        "A configuration's numbers can differ in their last digits between versions."
    )


def _table(archs: pd.DataFrame) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in _HEADER)
    rows = []
    for row in archs.itertuples(index=False):
        cells = (
            escape(str(row.model)),
            escape(str(row.family)),
            f"{int(row.params):,}" if pd.notna(row.params) else "—",
            style.count(float(row.flops)),
            style.number(float(row.lr)),
            style.number(float(row.weight_decay)),
            f"{row.n_seeds} ({row.n_done})",
            style.percent(float(row.acc_mean), float(row.acc_std)),
            str(row.n_diverged),
        )
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    body = "".join(rows)
    return f'<table class="summary"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
