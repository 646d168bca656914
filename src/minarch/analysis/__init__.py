"""Analyses: pure functions from the store's run tables to result tables.

``analyze(runs, epochs, thresholds)`` does docs/methods.md A.1-A.2 in one call;
``classify_runs``, ``architecture_table`` and ``minimal_parameters`` are its
steps. Thresholds are a study file's ``analysis:`` section (``AnalysisSpec``).
``compression_frame`` collects pruning and quantization results into one
table; ``redundancy``, ``phases`` and ``minimal_bits`` analyse it (A.3-A.4).
``hpspace_tables`` gives the thesis's Tables 4.1 and 4.2 (part B).
``stored.py`` reads a stored study and applies its own thresholds; each table of
``minarch.tables`` is computed from its ``TableInput``.
"""

from minarch.analysis.collect import compression_frame
from minarch.analysis.compression import COMPRESSION_COLUMNS
from minarch.analysis.extend import grid_extensions, size_directions, size_extensions
from minarch.analysis.hpspace import HpSpaceResult, hpspace_tables
from minarch.analysis.minimal import minimal_parameters
from minarch.analysis.pruning import phases, pruning_curves, redundancy
from minarch.analysis.quantization import minimal_bits
from minarch.analysis.regimes import REGIMES, RULES, architecture_table, classify_runs
from minarch.analysis.result import Analysis, analyze, definitions
from minarch.analysis.selection import chosen_configurations
from minarch.analysis.stored import (
    TableInput,
    analyze_study,
    compression_results,
    compute_table,
    study_table,
)
from minarch.spec.schema import AnalysisSpec

__all__ = [
    "COMPRESSION_COLUMNS",
    "REGIMES",
    "RULES",
    "TableInput",
    "Analysis",
    "HpSpaceResult",
    "AnalysisSpec",
    "analyze",
    "analyze_study",
    "architecture_table",
    "classify_runs",
    "chosen_configurations",
    "compression_frame",
    "compression_results",
    "compute_table",
    "definitions",
    "grid_extensions",
    "hpspace_tables",
    "minimal_bits",
    "minimal_parameters",
    "phases",
    "pruning_curves",
    "redundancy",
    "size_directions",
    "size_extensions",
    "study_table",
]
