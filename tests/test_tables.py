"""The analysis-table registry (minarch.tables): one entry per table, read everywhere."""

from __future__ import annotations

import dataclasses
import io

import pandas as pd
import pytest
from rich.console import Console

import minarch
from minarch.lazy import resolve
from minarch.reporting.sections import SECTION_BUILDERS
from minarch.reporting.write import section_path
from minarch.spec.schema import AnalysisSpec
from minarch.tables import ANALYSIS_TABLES, TABLES, AnalysisTable, View
from minarch.terminal import print_analysis


@pytest.mark.parametrize("entry", ANALYSIS_TABLES, ids=lambda t: t.name)
def test_every_entry_names_real_functions_fields_and_sections(entry):
    assert callable(resolve(entry.compute))
    assert entry.view.prepare is None or callable(resolve(entry.view.prepare))
    assert set(entry.thresholds) <= set(AnalysisSpec.model_fields)
    assert entry.section in {section_path(build) for build in SECTION_BUILDERS}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(TABLES))
def test_every_table_of_a_full_study_has_rows_and_its_view_columns(full_store, name):
    _, db = full_store
    frame = minarch.table(name, db=db, study="full")
    assert len(frame) > 0
    out = io.StringIO()
    print_analysis(Console(file=out, width=200), frame, name, wide=False)
    text = out.getvalue()
    assert all(header in text for header in TABLES[name].view.columns.values())
    assert all(field in text for field in TABLES[name].thresholds)


NEW_TABLE = AnalysisTable(
    "seed-count",
    "how many runs each model has (a table added in a test)",
    "tests.test_tables:seed_count",
    ("gap",),
    View({"model": "model", "n": "runs"}),
    "counted runs",
    ": none is finished",
    "minarch.reporting.sections.regimes:convergence_regimes",
)


def seed_count(study) -> pd.DataFrame:
    runs = study.runs
    return runs.groupby(["dataset", "model"], as_index=False).size().rename(columns={"size": "n"})


@pytest.mark.slow
def test_a_table_added_to_the_registry_reaches_the_api_terminal_and_report(
    full_store, monkeypatch, tmp_path
):
    _, db = full_store
    monkeypatch.setitem(TABLES, NEW_TABLE.name, NEW_TABLE)
    frame = minarch.table("seed-count", db=db)
    assert set(frame["n"]) == {4} and frame.attrs["thresholds"]["full"]["gap"] == 0.1
    out = io.StringIO()
    print_analysis(Console(file=out, width=80), frame, "seed-count", wide=False)
    assert "seed-count · full" in out.getvalue() and " runs " in out.getvalue()
    (report,) = minarch.report(db=db, out=tmp_path / "reports")
    assert "minarch analyze --table seed-count" in report.read_text()


def test_an_unknown_table_lists_the_registered_ones():
    with pytest.raises(minarch.MinarchError, match="table='nope': expected one of minimal,"):
        minarch.table("nope", db="sqlite:///:memory:")


def test_the_ellipses_view_reads_the_widest_roi_from_the_thresholds():
    """No column name is parsed: the widest ROI is the study's largest ``analysis.roi``."""
    rows = pd.DataFrame(
        {
            "best_log_lr": [-2.0], "best_log_wd": [-3.0],
            "roi0.5_points": [3], "roi0.5_length": [0.1], "roi0.5_width": [0.1],
            "roi2.0_points": [9], "roi2.0_length": [0.5], "roi2.0_width": [0.2],
        }
    )  # fmt: skip
    view = resolve(TABLES["ellipses"].view.prepare)(rows, {"roi": [0.5, 2.0]})
    assert view.loc[0, "widest_points"] == 9 and view.loc[0, "widest_roi"] == "2"
    assert view.loc[0, "best_lr"] == pytest.approx(0.01)


def test_entries_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        TABLES["minimal"].name = "other"  # type: ignore[misc]
