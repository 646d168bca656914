"""The analysis tables: one typed entry each, read by the CLI, the API, the terminal and the report.

An entry names its compute function, the ``analysis:`` thresholds it reads,
its compact terminal view, what a study without it lacks, and the report
section that presents it. Functions are named as ``"module:function"`` and
imported on first use, so this module (and ``minarch --help``) loads nothing
heavy. To add a table: write its compute function in an analysis module, add
an entry below, and name the report section that shows it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from minarch.errors import OptionError


@dataclass(frozen=True)
class View:
    """The compact terminal view: these columns under short headers, one table per study
    and dataset, only the chosen configuration of each architecture (A.1).

    ``prepare``, if given, is ``"module:function"`` of ``(rows, thresholds) -> rows``
    adding the view's derived columns from one study's rows and ``analysis:`` values.
    """

    columns: Mapping[str, str]
    prepare: str | None = None


@dataclass(frozen=True)
class AnalysisTable:
    """One analysis table.

    ``compute`` is ``"module:function"`` of ``(TableInput) -> DataFrame``
    (``analysis/stored.py``), empty when the study has nothing to show; then the
    table's absence reads "study S has no {lacks}{why_absent}". ``section`` is the
    report section builder (``"module:function"``) that presents the table.
    """

    name: str
    description: str
    compute: str
    thresholds: tuple[str, ...]
    view: View
    lacks: str
    why_absent: str
    section: str


_REGIME_THRESHOLDS = (
    "chance_margin", "min_loss_drop", "seed_spread", "val_loss_rise", "val_acc_drop", "gap",
)  # fmt: skip
_UNFINISHED = ("finished runs", " yet")
_PRUNED = ("pruning results", ": its file has no prune: section, or none is measured yet")
_GRID = (
    "hyperparameter-space runs",
    ": no model of it was trained on a grid of at least 2 learning rates x 2 weight decays",
)
_REGIMES_SECTION = "minarch.reporting.sections.regimes:convergence_regimes"
_PRUNING_SECTION = "minarch.reporting.sections.pruning:pruning_sensitivity"
_QUANT_SECTION = "minarch.reporting.sections.quantization:quantization_robustness"
_HPSPACE_SECTION = "minarch.reporting.sections.hpspace:hyperparameter_space"

ANALYSIS_TABLES: tuple[AnalysisTable, ...] = (
    AnalysisTable(
        "minimal",
        "P_stable / P_min / P_over per dataset and family, bounds marked (A.2)",
        "minarch.analysis.result:minimal_table",
        (
            *_REGIME_THRESHOLDS,
            "stability_q",
            "target_accuracy",
            "accuracy_fraction",
            "p_min_reference",
            "bootstrap",
        ),
        View(
            {
                "family": "family",
                "n_architectures": "archs",
                "accuracy_bar": "bar",
                "p_stable_bound": "P_stable",
                "p_min_bound": "P_min",
                "p_min_interval": "95 % interval",
                "p_over": "P_over",
            },
            prepare="minarch.terminal:minimal_view",
        ),  # fmt: skip
        *_UNFINISHED,
        _REGIMES_SECTION,
    ),
    AnalysisTable(
        "architectures",
        "the regime of every architecture (A.1)",
        "minarch.analysis.result:architectures_table",
        _REGIME_THRESHOLDS,
        View(
            {
                "model": "model",
                "params": "params",
                "lr": "lr",
                "weight_decay": "wd",
                "regime": "regime",
                "stability": "stable",
                "acc_mean": "acc",
            }
        ),  # fmt: skip
        *_UNFINISHED,
        _REGIMES_SECTION,
    ),
    AnalysisTable(
        "runs",
        "every run's regime and the rule that decided it (A.1)",
        "minarch.analysis.result:runs_table",
        _REGIME_THRESHOLDS,
        View(
            {
                "model": "model",
                "lr": "lr",
                "weight_decay": "wd",
                "seed": "seed",
                "final_val_acc": "val acc",
                "regime": "regime",
                "rule": "rule",
            }
        ),  # fmt: skip
        *_UNFINISHED,
        _REGIMES_SECTION,
    ),
    AnalysisTable(
        "redundancy",
        "pruning redundancy R_delta per model, method and pipeline (A.3)",
        "minarch.analysis.pruning:redundancy_table",
        ("prune_delta",),
        View(
            {
                "model": "model",
                "method": "method",
                "pipeline": "pipeline",
                "n_seeds": "seeds",
                "r_mean": "R_δ",
                "r_std": "± std",
            }
        ),  # fmt: skip
        *_PRUNED,
        _PRUNING_SECTION,
    ),
    AnalysisTable(
        "phases",
        "plateau / degradation / collapse boundaries of each pruning curve (A.3)",
        "minarch.analysis.pruning:phases_table",
        ("prune_delta", "collapse_margin"),
        View(
            {
                "model": "model",
                "method": "method",
                "pipeline": "pipeline",
                "plateau_end": "plateau to",
                "collapse_start": "collapse from",
            }
        ),  # fmt: skip
        *_PRUNED,
        _PRUNING_SECTION,
    ),
    AnalysisTable(
        "min-bits",
        "the fewest bits with an accuracy drop <= delta per model (A.4)",
        "minarch.analysis.quantization:min_bits_table",
        ("quant_delta",),
        View(
            {
                "model": "model",
                "method": "method",
                "pipeline": "pipeline",
                "sparsity": "sparsity",
                "min_bits": "min bits",
                "drop_at_min": "drop",
            }
        ),  # fmt: skip
        "quantization results",
        ": its file has no quantize: section, or none is measured yet",
        _QUANT_SECTION,
    ),
    AnalysisTable(
        "int8",
        "real int8 against fp32: accuracy, file size, CPU latency (A.4)",
        "minarch.analysis.quantization:int8_table",
        (),
        View(
            {
                "model": "model",
                "acc_fp32": "fp32 acc",
                "acc_int8": "int8 acc",
                "acc_simulated": "simulated",
                "size_ratio": "size ratio",
                "speedup": "speed-up",
            }
        ),  # fmt: skip
        "real int8 results",
        ": its file does not ask for int8, or none is measured yet",
        _QUANT_SECTION,
    ),
    AnalysisTable(
        "ellipses",
        "ROI confidence ellipses per pruning variant, thesis Table 4.1 (B.6)",
        "minarch.analysis.hpspace:ellipses_table",
        ("roi", "ellipse_sde"),
        View(
            {
                "base_model": "model",
                "variant": "variant",
                "best_f": "best f",
                "best_lr": "lr*",
                "best_wd": "wd*",
                "widest_roi": "ROI",
                "widest_points": "points",
                "widest_length": "length",
                "widest_width": "width",
            },
            prepare="minarch.terminal:widest_roi",
        ),  # fmt: skip
        *_GRID,
        _HPSPACE_SECTION,
    ),
    AnalysisTable(
        "risk",
        "performance risk of reusing unpruned hyperparameters, Table 4.2 (B.7)",
        "minarch.analysis.hpspace:risk_table",
        ("roi",),
        View(
            {
                "base_model": "model",
                "variant": "variant",
                "d_mean": "d mean",
                "d_std": "d std",
                "dR_mean": "dR mean",
                "dR_std": "dR std",
                "points": "points",
            }
        ),  # fmt: skip
        *_GRID,
        _HPSPACE_SECTION,
    ),
    AnalysisTable(
        "claims",
        "the 2026 paper's claims (a)-(e) tested on the study's runs, with verdicts (A.5)",
        "minarch.analysis.claims:claims_table",
        ("alpha", "min_trend_n", "family_tolerance", "difficulty_order", "bootstrap"),
        View(
            {
                "claim": "claim",
                "verdict": "verdict",
                "value": "value",
                "n": "n",
                "p": "p",
                "decide": "to decide",
            }
        ),  # fmt: skip
        *_UNFINISHED,
        "minarch.reporting.sections.claims:paper_claims",
    ),
)

TABLES: dict[str, AnalysisTable] = {table.name: table for table in ANALYSIS_TABLES}


def analysis_table(name: str) -> AnalysisTable:
    """The entry of table ``name``; an unknown name is an error listing the valid ones."""
    try:
        return TABLES[name]
    except KeyError:
        raise OptionError("table", name, f"expected one of {', '.join(TABLES)}") from None
