"""What a section builder hands the page: a titled run of HTML fragments and figures.

Builders return data, not files, so the page, the PNG export and the tests all
see the same figures, and a builder never needs to know where the report goes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import pandas as pd
import plotly.graph_objects as go

from minarch.analysis import Analysis, AnalysisSpec, analyze
from minarch.analysis.difficulty import dataset_order
from minarch.spec import StudySpec


@dataclass(frozen=True)
class Figure:
    """A plotly figure with the file-name-safe name its PNG and HTML anchor use."""

    slug: str
    figure: go.Figure


@dataclass(frozen=True)
class Section:
    """A report section; ``parts`` are escaped HTML fragments and figures in page order.

    ``findings`` are plain-text sentences (escaped by the page) shown above the parts.
    """

    title: str
    parts: tuple[str | Figure, ...]
    findings: tuple[str, ...] = ()

    @property
    def figures(self) -> tuple[Figure, ...]:
        return tuple(part for part in self.parts if isinstance(part, Figure))


@dataclass(frozen=True)
class ReportInput:
    """Everything a section may draw from; each builder takes what it needs.

    ``study`` is the study file (its analysis settings), or None for defaults.
    ``compression`` holds one row per pruning or quantization result (the
    columns of ``minarch.analysis.COMPRESSION_COLUMNS``); empty when none.
    """

    runs: pd.DataFrame
    epochs: pd.DataFrame
    study: StudySpec | None = None
    compression: pd.DataFrame | None = None

    @cached_property
    def analysis(self) -> Analysis:
        """A.1-A.2 of the runs, computed once for every section that reads them."""
        return analyze(self.runs, self.epochs, self.thresholds)

    @property
    def thresholds(self) -> AnalysisSpec:
        """The study's ``analysis:`` section, or the defaults without a study."""
        return self.study.analysis if self.study is not None else AnalysisSpec()

    @cached_property
    def dataset_order(self) -> tuple[str, ...]:
        """The runs' datasets easy to hard: as the study orders them, else measured (A.5);
        measured once for every section that orders by it."""
        return tuple(dataset_order(self.runs, order=self.thresholds.difficulty_order))


SectionBuilder = Callable[[ReportInput], "Section | None"]
"""``ReportInput -> Section | None``; None when the input holds nothing to show."""


def slugify(text: object) -> str:
    """Lower-case ASCII words joined by '-', safe as a file name and an HTML id."""
    slug = re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-")
    return slug or "x"
