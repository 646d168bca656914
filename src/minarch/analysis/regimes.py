"""Convergence regimes (docs/methods.md A.1): every base run, then every configuration, labelled.

A run is judged from its own per-epoch curves by the first rule that fires,
in the order of ``RULES``; then the seeds of each configuration (dataset,
family, model, params, lr, weight decay) are compared, and when their final
validation accuracies (a diverged seed at chance) disagree by more than
``seed_spread`` every seed that was not already unstable becomes unstable by
"seed disagreement". Only base runs of configurations whose every seed has
finished are judged (``selection.complete_configurations``).

Training accuracy and loss are the eval-mode pass over a fixed training
subset (``train_eval_acc``/``train_eval_loss``); a run stored before that
pass existed falls back to the running train-mode means (``train_acc``/
``train_loss``), and its ``train_metrics`` says "running".
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from minarch.analysis.selection import (
    CONFIG,
    chance,
    complete_configurations,
    configurations,
    seed_accuracy,
)
from minarch.columns import require_columns
from minarch.spec.schema import AnalysisSpec

REGIMES = ("unstable", "overfitting", "learning")
"""Worst first: a majority vote that ties goes to the worse regime."""

RULES = {
    "divergence": "unstable",
    "no progress": "unstable",
    "loss blow-up": "unstable",
    "below chance": "unstable",
    "seed disagreement": "unstable",
    "rising validation loss": "overfitting",
    "train-validation gap": "overfitting",
    "none": "learning",
}
"""Each rule and the regime it decides, in the order they are tried."""

RUN_INPUT = ["run_id", *CONFIG, "seed", "state"]
EPOCH_INPUT = ["run_id", "epoch", "train_loss", "train_acc", "val_loss", "val_acc"]
EVAL_COLUMNS = {"train_eval_loss": "train_loss", "train_eval_acc": "train_acc"}
"""The eval-mode training metrics and the running means they replace (old stores lack them)."""
TRAIN_METRICS = ("eval", "running")
"""Which training metrics judged a run: the eval-mode pass, or the running train-mode means."""
CLASSIFIED_COLUMNS = [
    *RUN_INPUT,
    "epochs",
    "chance",
    "initial_loss",
    "train_metrics",
    "final_train_loss",
    "final_train_acc",
    "final_val_acc",
    "best_val_acc",
    "curve_regime",
    "curve_rule",
    "seed_spread",
    "regime",
    "rule",
]
ARCHITECTURE_COLUMNS = [
    *CONFIG,
    "n_seeds",
    *(f"n_{regime}" for regime in REGIMES),
    "regime",
    "stability",
    "acc_mean",
    "acc_std",
    "seed_spread",
    "chosen",
]


def classify_runs(
    runs: pd.DataFrame,
    epochs: pd.DataFrame,
    thresholds: AnalysisSpec | None = None,
    *,
    num_classes: Mapping[str, int] | None = None,
) -> pd.DataFrame:
    """One row per done or diverged run: its regime and the rule that decided it.

    ``curve_regime``/``curve_rule`` are the verdict of the run's own curves;
    ``regime``/``rule`` add the per-configuration seed check. Only base runs
    count (derived runs reuse their parent's model label and seed). Chance is
    1 / classes from the dataset registry, or from ``num_classes`` (needed for
    image folders, whose class count the registry learns only when loading);
    when neither knows, chance is taken as 0 and the loss at initialisation,
    ``initial_loss`` = ln(classes), is unknown, so "no progress" is not judged.
    A done run without any recorded epoch is left out; a diverged one is still
    "divergence". Configurations with a seed not yet finished are left out
    whole (``selection.complete_configurations``).
    """
    t = thresholds or AnalysisSpec()
    runs = require_columns(runs, RUN_INPUT, "analysis input 'runs'")
    epochs = require_columns(epochs, EPOCH_INPUT, "analysis input 'epochs'")
    epochs = epochs.reindex(columns=list(dict.fromkeys([*epochs.columns, *EVAL_COLUMNS])))
    finished = complete_configurations(runs)[RUN_INPUT]
    curves = {
        run_id: curve.sort_values("epoch")
        for run_id, curve in epochs[epochs["run_id"].isin(finished["run_id"])].groupby(
            "run_id", sort=False
        )
    }
    rows = []
    for run in finished.to_dict("records"):
        curve = curves.get(run["run_id"])
        if curve is None and run["state"] != "diverged":
            continue
        features = _features(curve, diverged=run["state"] == "diverged")
        level = chance(run["dataset"], num_classes)
        initial = math.log(1 / level) if level > 0 else np.nan
        rule = _curve_rule(features, level, initial, t)
        rows.append(
            {**run, **features, "chance": level, "initial_loss": initial, "curve_rule": rule}
        )
    table = pd.DataFrame(rows, columns=CLASSIFIED_COLUMNS)
    table["curve_regime"] = table["curve_rule"].map(RULES)
    table["seed_spread"] = (
        table.assign(_acc=seed_accuracy(table))
        .groupby(CONFIG, dropna=False)["_acc"]
        .transform(lambda acc: acc.max() - acc.min())
    )
    disagree = (table["seed_spread"] > t.seed_spread) & (table["curve_regime"] != "unstable")
    table["rule"] = table["curve_rule"].where(~disagree, "seed disagreement")
    table["regime"] = table["rule"].map(RULES)
    return table[CLASSIFIED_COLUMNS].reset_index(drop=True)


def architecture_table(classified: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration over its seeds: the regime map.

    ``regime`` is the seeds' majority (ties go to the worse regime, see
    ``REGIMES``); ``stability`` the fraction of seeds not unstable;
    ``acc_mean``/``acc_std`` the final validation accuracy over all seeds, a
    diverged seed at chance (std is NaN with one seed). ``chosen`` marks each
    architecture's chosen configuration (``selection``): the one that stands
    for it in P_min, P_over and the figures. Sorted by dataset, family,
    params, model, lr, weight decay.
    """
    counts = {f"n_{regime}": (classified["regime"] == regime).astype(int) for regime in REGIMES}
    regimes = (
        classified.assign(**counts)
        .groupby(CONFIG, dropna=False)
        .agg(**{column: (column, "sum") for column in counts}, seed_spread=("seed_spread", "first"))
        .reset_index()
    )
    table = configurations(classified).merge(regimes, on=CONFIG, how="left", sort=False)
    majority = table[list(counts)].to_numpy().argmax(axis=1)  # first maximum: the worse
    table["regime"] = np.asarray(REGIMES)[majority]
    table["stability"] = 1 - table["n_unstable"] / table["n_seeds"]
    return table[ARCHITECTURE_COLUMNS]


def _features(curve: pd.DataFrame | None, *, diverged: bool) -> dict[str, float]:
    """What the rules read off one curve (private keys are not kept in the table)."""
    if curve is None:  # diverged within its first epoch
        return {"epochs": 0, "train_metrics": "", "_finite": False}
    measured = curve["train_eval_acc"].notna().any()
    loss, acc = ("train_eval_loss", "train_eval_acc") if measured else ("train_loss", "train_acc")
    train_loss = curve[loss].to_numpy(float)
    val_loss = curve["val_loss"].to_numpy(float)
    finite = not diverged and bool(np.isfinite(train_loss).all() and np.isfinite(val_loss).all())
    at_min = int(np.argmin(val_loss)) if finite else 0
    final_val_acc, best_val_acc = curve["val_acc"].iloc[-1], curve["val_acc"].max()
    return {
        "epochs": len(curve),
        "train_metrics": TRAIN_METRICS[0] if measured else TRAIN_METRICS[1],
        "final_train_loss": train_loss[-1],
        "final_train_acc": curve[acc].iloc[-1],
        "final_val_acc": final_val_acc,
        "best_val_acc": best_val_acc,
        "_finite": finite,
        "_val_rise": val_loss[-1] / val_loss[at_min] - 1 if finite else np.nan,
        "_val_acc_drop": best_val_acc - final_val_acc,
        "_train_fell": train_loss[-1] < train_loss[at_min],
    }


def _curve_rule(f: Mapping[str, float], chance: float, initial: float, t: AnalysisSpec) -> str:
    """The first rule in ``RULES`` order that the run's own curves satisfy.

    The loss rule compares the final training loss with ``initial`` (ln C,
    the loss of a uniform guess), never with the first epoch's, so a
    one-epoch run or a fast learner is not unstable for having learned in its
    first epoch. A loss above it is "no progress" when the validation
    accuracy is within the chance margin too, and "loss blow-up" when the
    model classifies well all the same (overconfident, not stable). A rising
    validation loss is overfitting only when the validation accuracy fell
    from its best too; alone it is calibration drift.
    """
    if not f["_finite"]:
        return "divergence"
    margin = chance + t.chance_margin * (1 - chance)
    if f["final_train_loss"] > (1 - t.min_loss_drop) * initial:  # False when initial is NaN
        return "no progress" if f["final_val_acc"] < margin else "loss blow-up"
    if f["final_train_acc"] < margin:
        return "below chance"
    declined = f["_val_rise"] > t.val_loss_rise and f["_val_acc_drop"] > t.val_acc_drop
    if declined and f["_train_fell"]:
        return "rising validation loss"
    if f["final_train_acc"] - f["final_val_acc"] > t.gap:
        return "train-validation gap"
    return "none"
