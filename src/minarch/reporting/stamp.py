"""What a report was built from, kept beside it, so an unchanged study is not drawn again.

A report is a function of the study's runs, curves and compression results,
its study file, and the code that draws them: minarch and plotly (whose
plotly.js the page inlines and the PNGs are rendered with). ``fingerprint``
hashes all of them; ``report-stamp.json`` beside ``report.html`` holds the
fingerprint of the report in that folder and each PNG's content hash. Building
and exporting a report takes seconds (a browser render per PNG), hashing its
inputs a fraction of one, so ``minarch report`` on an unchanged study writes
nothing, and a rebuilt report exports only the PNGs whose content changed.

This module loads neither plotly nor the sections: the check must cost less
than what it saves.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import version
from pathlib import Path

import pandas as pd

import minarch
from minarch.scratch import write_text
from minarch.spec import StudySpec
from minarch.tables import TABLES

REPORT = "report.html"
FIGURES = "figures"
STAMP = "report-stamp.json"


@dataclass(frozen=True)
class Stamp:
    """``inputs``: the fingerprint of the report in a folder (None: unknown, or a report
    written without its PNGs); ``figures``: slug -> content hash of each PNG there."""

    inputs: str | None = None
    figures: dict[str, str] = field(default_factory=dict)


def fingerprint(
    runs: pd.DataFrame,
    epochs: pd.DataFrame,
    *,
    title: str,
    study: StudySpec | None,
    compression: pd.DataFrame | None,
    png: bool,
) -> str:
    """A hash of everything ``write_report`` builds a report from, its arguments and code.

    The table registry counts as code: a plugin's table adds to the report. A
    plugin's own source does not: after changing it, ``minarch report --rebuild``.
    """
    parts = [
        code_version(),
        [repr(table) for _, table in sorted(TABLES.items())],
        title,
        png,
        None if study is None else study.model_dump_json(),
        *(None if f is None else f.to_csv(index=False) for f in (runs, epochs, compression)),
    ]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


@cache
def code_version() -> str:
    """minarch's version and a hash of its source (a development tree changes its code
    under one version), and plotly's version."""
    source = hashlib.sha256()
    package = Path(minarch.__file__).parent
    for path in sorted(package.rglob("*.py")):
        source.update(path.relative_to(package).as_posix().encode() + b"\0")
        source.update(path.read_bytes())
    return f"minarch {minarch.__version__} {source.hexdigest()}, plotly {version('plotly')}"


def is_current(folder: Path, inputs: str) -> bool:
    """Whether ``folder`` holds the whole report built from the inputs fingerprinted ``inputs``."""
    stamp = read(folder)
    files = [folder / REPORT, *(folder / FIGURES / f"{slug}.png" for slug in stamp.figures)]
    return stamp.inputs == inputs and all(f.is_file() for f in files)


def read(folder: Path) -> Stamp:
    """The stamp in ``folder``; an empty one where there is none or it cannot be read."""
    try:
        saved = json.loads((folder / STAMP).read_text(encoding="utf-8"))
        return Stamp(saved["inputs"], dict(saved["figures"]))
    except (OSError, ValueError, KeyError, TypeError):
        return Stamp()


def forget(folder: Path) -> None:
    """Drop the stamp in ``folder``: the next report there renders every PNG again."""
    (folder / STAMP).unlink(missing_ok=True)


def write(folder: Path, stamp: Stamp) -> None:
    """Record ``stamp`` for ``folder``, once the files it describes are in place."""
    text = json.dumps({"inputs": stamp.inputs, "figures": stamp.figures}, indent=1)
    write_text(folder / STAMP, text + "\n")
