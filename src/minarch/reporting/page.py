"""The self-contained HTML page: plotly.js inlined once, every figure a div.

Nothing on the page is fetched: no CDN, no web fonts. Every string that came
from the user (title, study, dataset, model names) is escaped, here or in the
section that put it on the page; section HTML arrives escaped.
"""

from __future__ import annotations

from datetime import datetime, timezone
from html import escape

import pandas as pd
import plotly.io as pio
import plotly.offline

import minarch
from minarch.analysis import summary
from minarch.analysis.selection import incomplete_count, incomplete_note
from minarch.reporting.png import PNG_OPTIONS, figure_height
from minarch.reporting.section import Figure, Section, slugify
from minarch.reporting.style import FONT

STATES = ("done", "running", "pending", "diverged", "failed")

_CSS = f"""
body {{ font-family: {FONT}; color: #222; max-width: 1000px; margin: 2em auto;
       padding: 0 1em; line-height: 1.45; }}
h1 {{ margin-bottom: 0.2em; }}
.meta {{ color: #555; }}
.note {{ color: #8a4b00; }}
table {{ border-collapse: collapse; margin: 0.8em 0 1.5em; font-size: 0.92em; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 0.3em 0.7em; text-align: right; }}
th {{ border-bottom: 2px solid #444; }}
td:first-child, td:nth-child(2), th:first-child, th:nth-child(2) {{ text-align: left; }}
figure {{ margin: 0 0 1.5em; }}
.empty {{ font-size: 1.2em; color: #a33; }}
.description {{ font-size: 1.05em; }}
.findings {{ background: #f3f6fa; border-left: 4px solid #2E86C1; padding: 0.2em 1em;
            margin: 0.8em 0 1.2em; }}
.findings p {{ margin: 0.5em 0 0; }}
"""

_PLOT_CONFIG = {"displaylogo": False, "responsive": True, "toImageButtonOptions": PNG_OPTIONS}


def render(
    title: str, runs: pd.DataFrame, sections: list[Section], *, description: str = ""
) -> str:
    """The whole report as one HTML string; ``description`` is the study file's, shown first."""
    body = [_header(title, runs, description)]
    if summary.finished(runs).empty:
        body.append('<p class="empty">No finished runs yet.</p>')
    left_out = incomplete_note(incomplete_count(runs))
    if left_out:
        body.append(f'<p class="note banner">{escape(left_out)}</p>')
    if len(sections) > 1:
        links = (f'<li><a href="#{slugify(s.title)}">{escape(s.title)}</a></li>' for s in sections)
        body.append(f"<nav><ul>{''.join(links)}</ul></nav>")
    body += [_section(s) for s in sections]
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(title)}</title>\n<style>{_CSS}</style>\n"
        f'<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script>\n'
        "</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )


def _header(title: str, runs: pd.DataFrame, description: str) -> str:
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    counts = runs["state"].value_counts()
    states = [*STATES, *sorted(set(counts.index) - set(STATES), key=str)]
    cells = "".join(f"<th>{escape(str(s))}</th>" for s in states)
    values = "".join(f"<td>{int(counts.get(s, 0))}</td>" for s in states)
    studies = ", ".join(escape(str(s)) for s in runs["study"].dropna().unique())
    paragraphs = (p.strip() for p in description.split("\n\n") if p.strip())
    about = "".join(f'<p class="description">{escape(p)}</p>\n' for p in paragraphs)
    return (
        f"<header><h1>{escape(title)}</h1>\n{about}"
        f'<p class="meta">Generated {now} by minarch {escape(minarch.__version__)}'
        + (f" &middot; studies: {studies}" if studies else "")
        + f"</p>\n<table><thead><tr><th>state</th>{cells}<th>total</th></tr></thead>"
        f"<tbody><tr><th>runs</th>{values}<td>{len(runs)}</td></tr></tbody></table></header>"
    )


def _section(section: Section) -> str:
    parts = [f'<section id="{slugify(section.title)}"><h2>{escape(section.title)}</h2>']
    if section.findings:
        items = "".join(f"<li>{escape(s)}</li>" for s in section.findings)
        parts.append(f'<div class="findings"><p><b>Findings</b></p><ul>{items}</ul></div>')
    parts += [_figure(p) if isinstance(p, Figure) else p for p in section.parts]
    return "\n".join([*parts, "</section>"])


def _figure(fig: Figure) -> str:
    div = pio.to_html(
        fig.figure,
        full_html=False,
        include_plotlyjs=False,
        div_id=fig.slug,
        config=_PLOT_CONFIG,
        default_width="100%",
        default_height=f"{figure_height(fig.figure)}px",
    )
    return f"<figure>{div}</figure>"
