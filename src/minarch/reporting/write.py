"""``write_report``: build every section in memory, then write files atomically."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import replace
from html import escape
from pathlib import Path

import pandas as pd

from minarch.analysis import summary
from minarch.columns import require_columns
from minarch.errors import MinarchError
from minarch.reporting import page, stamp
from minarch.reporting.png import Browser, export_pngs
from minarch.reporting.section import Figure, ReportInput, Section, SectionBuilder
from minarch.reporting.sections import SECTION_BUILDERS
from minarch.scratch import write_text
from minarch.spec import StudySpec
from minarch.tables import TABLES


def write_report(
    runs: pd.DataFrame,
    epochs: pd.DataFrame,
    out_dir: Path,
    *,
    title: str,
    study: StudySpec | None = None,
    compression: pd.DataFrame | None = None,
    png: bool = True,
) -> Path:
    """Write ``out_dir/report.html`` (and ``out_dir/figures/<slug>.png``); return its path.

    Nothing is written until the whole report is built, and each file appears
    by rename, so a failure never leaves a half-written report. Missing
    Chromium only costs the PNGs (one log line says so), never the HTML. The
    stamp written last (``stamp``) says what the report was built from, and
    which PNGs a later report need not render again.
    """
    out_dir = Path(out_dir)
    inputs = stamp.fingerprint(
        runs, epochs, title=title, study=study, compression=compression, png=png
    )
    runs = require_columns(runs, summary.RUN_COLUMNS, "report input 'runs'")
    epochs = require_columns(epochs, summary.EPOCH_COLUMNS, "report input 'epochs'")
    with Browser() if png else nullcontext() as browser:  # it starts while the sections build
        data = ReportInput(runs, epochs, study, compression)
        built = [(build, s) for build in SECTION_BUILDERS if (s := build(data))]
        sections = _unique_slugs([_with_tables(build, section) for build, section in built])
        description = study.description if study is not None else ""
        html = page.render(title, runs, sections, description=description)
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            before = stamp.read(out_dir)
            stamp.write(out_dir, stamp.Stamp())  # a report killed from here on is not current
            figures = [f for s in sections for f in s.figures]
            pngs = (
                export_pngs(figures, out_dir / stamp.FIGURES, before.figures, browser)
                if browser
                else {}
            )
            path = write_text(out_dir / stamp.REPORT, html)
            done = stamp.Stamp(inputs, pngs) if pngs is not None else replace(before, inputs=None)
            stamp.write(out_dir, done)
            return path
        except OSError as e:
            raise MinarchError(
                f"cannot write the report to directory {out_dir}: {e.strerror or e}"
            ) from e


def _with_tables(build: SectionBuilder, section: Section) -> Section:
    """``section`` closed by the analysis tables it presents (``minarch.tables``), so a
    reader knows which command prints its numbers."""
    names = [t.name for t in TABLES.values() if t.section == section_path(build)]
    if not names:
        return section
    commands = ", ".join(f"<code>minarch analyze --table {escape(name)}</code>" for name in names)
    note = f'<p class="note">The tables behind this section: {commands}.</p>'
    return replace(section, parts=(*section.parts, note))


def section_path(build: SectionBuilder) -> str:
    """The ``"module:function"`` a table entry names a section builder by."""
    return f"{build.__module__}:{build.__qualname__}"


def _unique_slugs(sections: list[Section]) -> list[Section]:
    """Different dataset names can share a slug ('a b', 'a-b'); number the repeats."""
    used: set[str] = set()

    def claim(part: str | Figure) -> str | Figure:
        if isinstance(part, str):
            return part
        slug, n = part.slug, 1
        while slug in used:
            n += 1
            slug = f"{part.slug}-{n}"
        used.add(slug)
        return part if slug == part.slug else replace(part, slug=slug)

    return [replace(s, parts=tuple(claim(p) for p in s.parts)) for s in sections]
