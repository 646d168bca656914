"""Analyses: pure functions from the store's run tables to result tables.

``analyze(runs, epochs, thresholds)`` does METHODS.md A.1-A.2 in one call;
``classify_runs``, ``architecture_table`` and ``minimal_parameters`` are its
steps. Thresholds are a study file's ``analysis:`` section (``AnalysisSpec``).
"""

from minarch.analysis.minimal import minimal_parameters
from minarch.analysis.regimes import REGIMES, RULES, architecture_table, classify_runs
from minarch.analysis.result import Analysis, analyze, definitions
from minarch.spec.schema import AnalysisSpec

__all__ = [
    "REGIMES",
    "RULES",
    "Analysis",
    "AnalysisSpec",
    "analyze",
    "architecture_table",
    "classify_runs",
    "definitions",
    "minimal_parameters",
]
