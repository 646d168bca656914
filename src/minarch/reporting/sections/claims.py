"""The paper's claims tested on this study's runs (docs/methods.md A.5)."""

from __future__ import annotations

import math
from html import escape

import pandas as pd

from minarch.analysis.claims import ClaimInput, claims
from minarch.analysis.statistics import format_p
from minarch.reporting.section import ReportInput, Section

_HEADER = ("Claim", "Statement", "Test", "Value", "n", "p or 95 % interval", "Verdict", "To decide")


def paper_claims(data: ReportInput) -> Section | None:
    """One row and one finding per claim (a)-(e), each with its statistic and verdict."""
    if data.analysis.architectures.empty:
        return None
    compression = data.compression if data.compression is not None else pd.DataFrame()
    table = claims(ClaimInput(data.analysis, data.runs, compression, data.dataset_order))
    t = data.thresholds
    note = (
        f"<p>Each claim is tested on this study's own runs. A monotone claim is Spearman's ρ "
        f"within strata (exact permutation p while there are at most 8! orderings, else the "
        f"normal approximation); it is supported or contradicted only at p &lt; {t.alpha:g} "
        f"with n ≥ {t.min_trend_n}. Families agree (e) when the 95 % bootstrap interval of "
        f"the gap between their best accuracies lies within {100 * t.family_tolerance:g} pp "
        "on every dataset.</p>"
    )
    return Section(
        "The paper's claims on this study",
        (note, _table(table)),
        tuple(_finding(row) for row in table.itertuples(index=False)),
    )


def _table(table: pd.DataFrame) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in _HEADER)
    rows = []
    for row in table.itertuples(index=False):
        cells = (
            f"({escape(row.claim)})",
            escape(row.statement),
            escape(row.statistic) or "—",
            _value(row),
            str(row.n),
            escape(_p_or_interval(row)),
            f"<b>{escape(row.verdict)}</b>",
            escape(row.decide) or "—",
        )
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return (
        f'<table class="summary"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _finding(row) -> str:
    evidence = ", ".join(
        part
        for part in (
            f"{_value(row)}" if math.isfinite(row.value) else "",
            f"n = {row.n}",
            _p_or_interval(row),
        )
        if part
    )
    text = f"({row.claim}) {row.statement} {row.verdict.capitalize()} ({evidence})"
    return text + (f"; to decide: {row.decide}." if row.decide else ".")


def _value(row) -> str:
    if not math.isfinite(row.value):
        return "—"
    return f"{row.value:.1f} pp" if row.claim == "e" else f"ρ = {row.value:.2f}"


def _p_or_interval(row) -> str:
    low, high = row.interval_low, row.interval_high
    if math.isfinite(low) and math.isfinite(high):
        return f"95 % interval {low:.1f}–{high:.1f} pp"
    if math.isfinite(row.p):
        return format_p(row.p)
    return ""
