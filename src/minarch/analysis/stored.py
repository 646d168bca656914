"""Analyses of a study as the store holds it: the one place that picks what they read.

Each study is analysed with the thresholds of its own stored file, and its
compression tables hold only the settings that file still asks for. Every
analysis table (``minarch.tables``) is computed from a ``TableInput``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import pandas as pd

from minarch.analysis.collect import compression_frame
from minarch.analysis.result import Analysis, analyze
from minarch.analysis.selection import (
    incomplete_count,
    incomplete_note,
    selection_note,
    validated_on_test,
)
from minarch.lazy import resolve
from minarch.spec import StudySpec, parse_study
from minarch.spec.derive import oneshot_settings, setting_key
from minarch.spec.schema import AnalysisSpec
from minarch.store import Store
from minarch.tables import analysis_table


@dataclass(frozen=True, eq=False)
class TableInput:
    """One stored study, read once and on demand: what every analysis table is computed from."""

    store: Store
    name: str

    @cached_property
    def spec(self) -> StudySpec:
        """The study file as it was registered, validated again."""
        return parse_study(self.store.study_spec(self.name), f"study '{self.name}' in the store")

    @property
    def thresholds(self) -> AnalysisSpec:
        return self.spec.analysis

    @cached_property
    def runs(self) -> pd.DataFrame:
        return self.store.runs_frame(study=self.name)

    @cached_property
    def epochs(self) -> pd.DataFrame:
        return self.store.epochs_frame(study=self.name)

    @cached_property
    def analysis(self) -> Analysis:
        """Convergence regimes and minimal parameters (A.1-A.2)."""
        return analyze(self.runs, self.epochs, self.thresholds)

    @cached_property
    def compression(self) -> pd.DataFrame:
        """The compression results under the settings the stored file asks for now.

        Results of settings since dropped from the file (a coarser sparsity grid,
        another tolerance) stay in the store but out of the tables and the report.
        """
        asked = {setting_key(s) for s in oneshot_settings(self.spec)}
        derived = set(self.runs.loc[self.runs["parent_id"].notna(), "run_id"])  # QAT: its own
        evaluations = [
            e
            for e in self.store.evaluations(study=self.name)
            if e.key in asked or e.run_id in derived
        ]
        return compression_frame(self.runs, evaluations)

    @property
    def notes(self) -> str | None:
        """What a table of the study must say beside it: the configurations left out
        unfinished, and whether its selections were made on test data."""
        notes = (
            incomplete_note(incomplete_count(self.runs)),
            selection_note(validated_on_test(self.runs)),
        )
        return " ".join(note for note in notes if note) or None


def analyze_study(store: Store, study: str) -> Analysis:
    """Convergence regimes and minimal parameters (A.1-A.2) of one stored study."""
    return TableInput(store, study).analysis


def compression_results(store: Store, study: str) -> pd.DataFrame:
    """The study's compression results under the settings its stored file asks for now."""
    return TableInput(store, study).compression


def study_table(store: Store, name: str, study: str) -> pd.DataFrame:
    """One analysis table (a name of ``minarch.tables.TABLES``) of one stored study."""
    return compute_table(name, TableInput(store, study))


def compute_table(name: str, study: TableInput) -> pd.DataFrame:
    """Analysis table ``name`` of ``study``, by its registered compute function."""
    return resolve(analysis_table(name).compute)(study)
