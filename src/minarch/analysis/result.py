"""``analyze``: the three tables of METHODS.md A.1-A.2 and the definitions behind them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from minarch.analysis.minimal import minimal_parameters
from minarch.analysis.regimes import architecture_table, classify_runs
from minarch.spec.schema import AnalysisSpec


@dataclass(frozen=True)
class Analysis:
    """Runs (classified), configurations (the regime map) and P_min / P_over per family."""

    runs: pd.DataFrame
    architectures: pd.DataFrame
    minimal: pd.DataFrame
    thresholds: AnalysisSpec

    @property
    def definitions(self) -> tuple[str, ...]:
        return definitions(self.thresholds)


def analyze(
    runs: pd.DataFrame,
    epochs: pd.DataFrame,
    thresholds: AnalysisSpec | None = None,
    *,
    num_classes: Mapping[str, int] | None = None,
) -> Analysis:
    """Classify every run, summarise every configuration, find P_min and P_over.

    ``runs`` and ``epochs`` are the store's tables (``minarch.runs``,
    ``minarch.epochs``); ``thresholds`` default to the study file's defaults.
    """
    t = thresholds or AnalysisSpec()
    classified = classify_runs(runs, epochs, t, num_classes=num_classes)
    table = architecture_table(classified)
    return Analysis(classified, table, minimal_parameters(classified, t), t)


def definitions(t: AnalysisSpec) -> tuple[str, ...]:
    """The rules and thresholds in words, for reports: every analysis says what it used."""

    def pct(x: float) -> str:
        return f"{100 * x:g} %"

    return (
        "Each done or diverged run is judged from its per-epoch curves; the first rule "
        "that holds decides its regime.",
        "Unstable (divergence): a non-finite training or validation loss.",
        f"Unstable (no progress): the final training loss is not at least {pct(t.min_loss_drop)} "
        "below its first-epoch value.",
        f"Unstable (below chance): final training accuracy below chance + "
        f"{pct(t.chance_margin)} of (1 − chance), chance = 1 / number of classes.",
        f"Unstable (seed disagreement): the final validation accuracies of a configuration's "
        f"seeds spread by more than {100 * t.seed_spread:g} pp; all its seeds count as unstable.",
        f"Overfitting (rising validation loss): the validation loss reached its minimum before "
        f"{pct(t.val_min_before)} of the epochs and ended more than {pct(t.val_loss_rise)} above "
        "it, while the training loss fell below its value at that epoch.",
        f"Overfitting (train–validation gap): final training minus validation accuracy above "
        f"{100 * t.gap:g} pp.",
        "Learning: none of the above.",
        "A configuration (architecture, learning rate, weight decay) takes its seeds' majority "
        "regime, ties going to the worse (unstable, then overfitting); its stability is the "
        "fraction of seeds not unstable. An architecture is represented by its configuration "
        "with the highest mean best validation accuracy.",
        f"P_min: the smallest parameter count from which every larger architecture of the "
        f"family is stable in at least {pct(t.stability_q)} of its seeds and reaches at least "
        f"{pct(t.accuracy_fraction)} of the family's best mean validation accuracy.",
        f"P_min's 95 % interval: {t.bootstrap} bootstrap resamples of each configuration's "
        f"seeds (seed {t.bootstrap_seed}); a resample that never reaches P_min ranks above "
        "every size, and a bound that falls on one is shown as not reached.",
        "P_over: the smallest parameter count from which every larger architecture's "
        "majority regime is overfitting.",
    )
