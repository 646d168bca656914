"""Analyses: pure functions from the store's run tables to result tables.

``analyze(runs, epochs, thresholds)`` does docs/methods.md A.1-A.2 in one call;
``classify_runs``, ``architecture_table`` and ``minimal_parameters`` are its
steps. Thresholds are a study file's ``analysis:`` section (``AnalysisSpec``).
``compression_frame`` collects pruning and quantization results into one
table; ``redundancy``, ``phases`` and ``minimal_bits`` analyse it (A.3-A.4).
``hpspace_tables`` gives the thesis's Tables 4.1 and 4.2 (part B).
``stored.py`` reads a stored study and applies its own thresholds; each table of
``minarch.tables`` is computed from its ``TableInput``.

Each name is imported on first use, so a verb loads only the analyses it
computes (``minarch analyze`` the regimes, not pruning or the hyperparameter space).
"""

from minarch.lazy import on_first_use

__getattr__ = on_first_use(
    __name__,
    {
        "COMPRESSION_COLUMNS": "compression",
        "REGIMES": "regimes",
        "RULES": "regimes",
        "TableInput": "stored",
        "Analysis": "result",
        "HpSpaceResult": "hpspace",
        "AnalysisSpec": "result",
        "analyze": "result",
        "analyze_study": "stored",
        "architecture_table": "regimes",
        "classify_runs": "regimes",
        "chosen_configurations": "selection",
        "compression_frame": "collect",
        "compression_results": "stored",
        "compute_table": "stored",
        "definitions": "result",
        "grid_extensions": "extend",
        "hpspace_tables": "hpspace",
        "minimal_bits": "quantization",
        "minimal_parameters": "minimal",
        "phases": "pruning",
        "pruning_curves": "pruning",
        "redundancy": "pruning",
        "size_directions": "extend",
        "size_extensions": "extend",
        "study_table": "stored",
    },
)

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
