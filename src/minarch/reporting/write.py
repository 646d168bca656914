"""``write_report``: build every section in memory, then write files atomically."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from html import escape
from pathlib import Path

import pandas as pd

from minarch.analysis import summary
from minarch.columns import require_columns
from minarch.errors import MinarchError
from minarch.reporting import page, stamp
from minarch.reporting.png import Pngs
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

    Nothing but the folder and a scratch folder in it is written until the whole
    report is built, and each file appears by rename, so a failure never leaves a
    half-written report. A browser starts at once and renders each section's
    changed figures while the next sections are built (``png.Pngs``). Missing
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
    before = stamp.read(out_dir)
    fig_dir = out_dir / stamp.FIGURES
    with _writing(out_dir), Pngs(fig_dir, before.figures) if png else nullcontext() as pngs:
        out_dir.mkdir(parents=True, exist_ok=True)
        data, unique = ReportInput(runs, epochs, study, compression), _Slugs()
        sections = []
        for build in SECTION_BUILDERS:
            if section := build(data):
                sections.append(unique(_with_tables(build, section)))
                if pngs:
                    pngs.add(sections[-1].figures)  # drawn while the next sections build
        description = study.description if study is not None else ""
        html = page.render(title, runs, sections, description=description)
        stamp.write(out_dir, stamp.Stamp())  # a report killed from here on is not current
        hashes = pngs.finish() if pngs else {}
        path = write_text(out_dir / stamp.REPORT, html)
        done = stamp.Stamp(inputs, hashes) if hashes is not None else replace(before, inputs=None)
        stamp.write(out_dir, done)
        return path


@contextmanager
def _writing(out_dir: Path) -> Iterator[None]:
    """An error writing into ``out_dir`` as a ``MinarchError`` that names it."""
    try:
        yield
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


class _Slugs:
    """Different dataset names can share a slug ('a b', 'a-b'); repeats are numbered in
    page order, section by section."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def __call__(self, section: Section) -> Section:
        return replace(section, parts=tuple(self._claim(p) for p in section.parts))

    def _claim(self, part: str | Figure) -> str | Figure:
        if isinstance(part, str):
            return part
        slug, n = part.slug, 1
        while slug in self.used:
            n += 1
            slug = f"{part.slug}-{n}"
        self.used.add(slug)
        return part if slug == part.slug else replace(part, slug=slug)
