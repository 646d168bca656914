"""``analyze``: the three tables of docs/methods.md A.1-A.2 and the definitions behind them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from minarch.analysis.minimal import minimal_parameters
from minarch.analysis.regimes import architecture_table, classify_runs
from minarch.analysis.selection import (
    incomplete_count,
    incomplete_note,
    selection_note,
    validated_on_test,
)
from minarch.spec.schema import AnalysisSpec

if TYPE_CHECKING:
    from minarch.analysis.stored import TableInput


@dataclass(frozen=True)
class Analysis:
    """Runs (classified), configurations (the regime map), P_stable / P_min / P_over per family.

    ``validated_on_test`` names the datasets whose selections (chosen
    configuration, best epoch) were made on the test split; ``selection_note``
    says so in one line, for printing beside any of the tables. ``incomplete``
    counts the configurations left out because a seed has not finished.
    """

    runs: pd.DataFrame
    architectures: pd.DataFrame
    minimal: pd.DataFrame
    thresholds: AnalysisSpec
    validated_on_test: tuple[str, ...] = ()
    incomplete: int = 0

    @property
    def definitions(self) -> tuple[str, ...]:
        return definitions(self.thresholds)

    @property
    def selection_note(self) -> str | None:
        """None when every dataset validated on a held-out split."""
        return selection_note(self.validated_on_test)

    @property
    def incomplete_note(self) -> str | None:
        """None when every configuration's seeds have finished."""
        return incomplete_note(self.incomplete)

    @property
    def notes(self) -> tuple[str, ...]:
        """The lines to print beside any of the tables: what was left out, what is optimistic."""
        return tuple(note for note in (self.incomplete_note, self.selection_note) if note)


def analyze(
    runs: pd.DataFrame,
    epochs: pd.DataFrame,
    thresholds: AnalysisSpec | None = None,
    *,
    num_classes: Mapping[str, int] | None = None,
) -> Analysis:
    """Classify every base run, summarise every configuration, find P_min and P_over.

    ``runs`` and ``epochs`` are the store's tables (``minarch.runs``,
    ``minarch.epochs``); ``thresholds`` default to the study file's defaults.
    """
    t = thresholds or AnalysisSpec()
    classified = classify_runs(runs, epochs, t, num_classes=num_classes)
    table = architecture_table(classified)
    minimal = minimal_parameters(classified, t, table=table)
    return Analysis(classified, table, minimal, t, validated_on_test(runs), incomplete_count(runs))


def minimal_table(study: TableInput) -> pd.DataFrame:
    """The ``minimal`` table (``minarch.tables``): P_min and P_over per family."""
    return study.analysis.minimal


def architectures_table(study: TableInput) -> pd.DataFrame:
    """The ``architectures`` table: every configuration's regime."""
    return study.analysis.architectures


def runs_table(study: TableInput) -> pd.DataFrame:
    """The ``runs`` table: every base run's regime and the rule that decided it."""
    return study.analysis.runs


def definitions(t: AnalysisSpec) -> tuple[str, ...]:
    """The rules and thresholds in words (docs/methods.md A.1-A.2), printed with every analysis."""

    def pct(x: float) -> str:
        return f"{100 * x:g} %"

    def pp(x: float) -> str:
        return f"{100 * x:g} pp"

    bar = (
        f"{pct(t.accuracy_fraction)} of the best mean final validation accuracy any family "
        "reached on the dataset"
        if t.p_min_reference == "all"
        else f"{pct(t.accuracy_fraction)} of the family's own best mean final validation accuracy"
    )
    targets = ", ".join(f"{d} {pct(v)}" for d, v in t.target_accuracy.items())
    return (
        "Only base runs enter: runs trained from their own initialisation on the grid, not "
        "pruned, fine-tuned, retrained, rewound or quantization-aware derived runs, and only "
        "configurations whose every seed has finished. Each done or diverged base run is "
        "judged from its per-epoch curves; the first rule that holds decides its regime.",
        "Training accuracy and loss are an eval-mode pass over a fixed subset of the training "
        "split at the end of each epoch; runs stored before that pass existed are judged on "
        "the running mean of train-mode mini-batches instead (the runs table's train_metrics "
        "says which), which understates the train − validation gap.",
        "Unstable (divergence): a non-finite training or validation loss at any point.",
        f"Unstable (no progress): the final training loss is above {pct(1 - t.min_loss_drop)} "
        "of ln C, the loss of a uniform guess over C classes, and the final validation "
        f"accuracy is below chance + {pct(t.chance_margin)} of (1 − chance) (never judged "
        "against the first epoch, so one-epoch runs and fast learners are judged fairly; not "
        "judged when C is unknown).",
        f"Unstable (loss blow-up): the same loss, above {pct(1 - t.min_loss_drop)} of ln C, "
        "while the validation accuracy is above that chance margin: a model that classifies "
        "but whose loss exceeds a uniform guess is overconfident, not learning stably.",
        f"Unstable (below chance): final training accuracy below chance + "
        f"{pct(t.chance_margin)} of (1 − chance), chance = 1 / C.",
        f"Unstable (seed disagreement): the final validation accuracies of a configuration's "
        f"seeds spread (max − min) by more than {pp(t.seed_spread)}, a diverged seed counting "
        "at chance (so when a seed diverges does not change the verdict); all its seeds count "
        "as unstable.",
        f"Overfitting (rising validation loss): the validation loss ended more than "
        f"{pct(t.val_loss_rise)} above its minimum and the final validation accuracy is more "
        f"than {pp(t.val_acc_drop)} below its best epoch, while the training loss kept falling "
        "(a rising validation loss alone, with accuracy at its best, is calibration drift).",
        f"Overfitting (train–validation gap): final training minus validation accuracy above "
        f"{pp(t.gap)}.",
        "Learning: none of the above.",
        "A configuration (architecture, learning rate, weight decay) takes its seeds' majority "
        "regime, ties going to the worse (unstable, then overfitting); its stability is the "
        "fraction of seeds not unstable; its accuracy is the mean final validation accuracy "
        "over all its seeds, a diverged seed counting at chance. An architecture is "
        "represented by its configuration with the highest such accuracy (ties: the smallest "
        "learning rate, then weight decay).",
        "Selection (the representative configuration, the best epoch) uses the validation "
        "split; a dataset that validates on the test split gets optimistic numbers, and the "
        "report says so beside the table.",
        f"P_stable: the smallest parameter count from which every larger architecture of the "
        f"family is stable in at least {pct(t.stability_q)} of its seeds.",
        "P_min: the smallest parameter count from which every larger architecture is stable "
        "and its accuracy reaches the bar: "
        + (f"the study's target accuracy ({targets}), else " if targets else "")
        + f"{bar}.",
        "A boundary at the smallest size tested is an upper bound (≤ that size); one that only "
        "the largest size reaches is a lower bound (≥ it); one no size reaches is not reached "
        "(> the largest).",
        f"P_min's 95 % interval: {t.bootstrap} bootstrap resamples of each configuration's "
        f"seeds (seed {t.bootstrap_seed}); a resample that never reaches P_min ranks above "
        "every size, and a bound that falls on one is shown as not reached.",
        "P_over: the smallest parameter count from which every larger architecture's "
        "majority regime is overfitting. When P_over ≤ P_min the regimes interleave rather "
        "than forming bands along parameter count.",
    )
