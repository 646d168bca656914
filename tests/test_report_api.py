"""``minarch.report`` stays the API verb whatever else has been imported."""

from __future__ import annotations

import importlib

import minarch
from tests.tiny_store import tiny_store


def test_report_verb_survives_importing_the_reporting_package(tmp_path):
    importlib.import_module("minarch.reporting")
    importlib.import_module("minarch.reporting.sections")
    assert callable(minarch.report)
    db = tiny_store(tmp_path)
    (path,) = minarch.report(db=db, out=tmp_path / "reports")
    assert path == tmp_path / "reports" / "tiny" / "report.html"
    assert "minarch study: tiny" in path.read_text(encoding="utf-8")
