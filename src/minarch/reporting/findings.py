"""Each section's findings in words, read off the analyses' tables.

A finding quotes numbers the section's tables and figures show (the best
architecture, how P_min moves along the datasets, what pruning costs); it
decides nothing the analysis has not decided. Sentences are plain text; the
section escapes them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from minarch.analysis import Analysis, HpSpaceResult
from minarch.analysis.hpspace import GROUP
from minarch.data import by_difficulty
from minarch.reporting import style
from minarch.reporting.style import dataset_title


def accuracy(archs: pd.DataFrame) -> list[str]:
    """Per dataset: the best architecture, and each family from its smallest to its largest."""
    archs = archs.dropna(subset=["acc_mean"])
    sentences = []
    for dataset in by_difficulty(archs["dataset"]):
        here = archs[archs["dataset"] == dataset]
        best = here.loc[here["acc_mean"].astype(float).idxmax()]
        text = (
            f"{dataset_title(dataset)}: the best architecture is {best['model']} "
            f"({_params(best['params'])} parameters) at {_pct(best['acc_mean'])}"
        )
        growth = []
        for family, fam in here.groupby("family", sort=True):
            fam = fam.sort_values("params")
            small, large = fam.iloc[0], fam.iloc[-1]
            if len(fam) > 1:
                growth.append(
                    f"{family} from {_pct(small['acc_mean'])} ({_params(small['params'])} "
                    f"parameters) to {_pct(large['acc_mean'])} ({_params(large['params'])})"
                )
        sentences.append(text + (f"; by size, {', '.join(growth)}." if growth else "."))
    return sentences


def curves(curves: pd.DataFrame) -> list[str]:
    """Per dataset: how many epochs, and the largest change in the last one (still learning?)."""
    sentences = []
    for dataset in by_difficulty(curves["dataset"]):
        here = curves[curves["dataset"] == dataset]
        changes = []
        for model, line in here.groupby("model", sort=False):
            acc = line.sort_values("epoch")["val_acc"].to_numpy(float)
            if len(acc) > 1 and np.isfinite(acc[-2:]).all():
                changes.append((acc[-1] - acc[-2], str(model)))
        epochs = int(here["epoch"].nunique())
        text = f"{dataset_title(dataset)}: {epochs} epoch{'s' if epochs != 1 else ''}"
        if changes:
            change, model = max(changes, key=lambda c: abs(c[0]))
            text += (
                f"; the largest change in validation accuracy over the last epoch is "
                f"{change:+.1f} pp ({model})"
            )
        sentences.append(text + ".")
    return sentences


def regimes(result: Analysis, datasets: Sequence[str]) -> list[str]:
    """How P_min moves along the datasets per family, each P_min, and the run regimes."""
    minimal = result.minimal
    sentences = []
    if len(datasets) > 1:
        for family, group in minimal.groupby("family", sort=True):
            group = group.set_index("dataset")
            group = group.loc[[d for d in datasets if d in group.index]]
            reached = group[group["reached"].astype(bool)]
            if len(reached) >= 2:
                trend = _trend(reached["p_min"], reached["p_min_at_edge"].astype(bool))
                sentences.append(f"P_min {trend} for {family}.")
    for dataset in datasets:
        for row in minimal[minimal["dataset"] == dataset].itertuples(index=False):
            sentences.append(f"{row.family} on {dataset_title(dataset)}: {_p_min(row)}.")
    counts = result.runs["regime"].value_counts()
    total = int(counts.sum())
    if total:
        parts = ", ".join(f"{int(counts.get(r, 0))} {r}" for r in ("learning", "overfitting"))
        sentences.append(
            f"Of {total} finished runs, {parts} and {int(counts.get('unstable', 0))} unstable."
        )
    return sentences


def pruning(redundancy: pd.DataFrame, curves: pd.DataFrame, delta: float) -> list[str]:
    """Per dataset and (method, pipeline): R_δ's range over models, the cost at the last point."""
    sentences = []
    keys = ["dataset", "method", "pipeline"]
    rank = {d: i for i, d in enumerate(by_difficulty(redundancy["dataset"]))}
    ordered = redundancy.sort_values("dataset", key=lambda s: s.map(rank), kind="stable")
    for (dataset, method, pipeline), group in ordered.groupby(keys, sort=False):
        what = "of FLOPs" if bool(group["structured"].iloc[0]) else "of the weights"
        most = group.loc[group["r_mean"].astype(float).idxmax()]
        least = group.loc[group["r_mean"].astype(float).idxmin()]
        same = len(group) > 1 and most["r_mean"] == least["r_mean"]
        text = (
            f"{dataset_title(dataset)}, {method} ({pipeline}): "
            f"accuracy stays within {100 * delta:g} pp up to "
            f"{_share(most['r_mean'])} {what} removed for "
            + (_every(len(group)) if same else str(most["model"]))
        )
        if most["model"] != least["model"] and not same:
            text += f", {_share(least['r_mean'])} for {least['model']}"
        line = curves[
            curves[keys].eq([dataset, method, pipeline]).all(axis=1)
            & (curves["model"] == most["model"])
        ].sort_values("compression")
        if len(line):
            last = line.iloc[-1]
            text += (
                f"; removing {_share(last['compression'])} {what} costs {most['model']} "
                f"{100 * last['drop_mean']:.1f} pp"
            )
        sentences.append(text + ".")
    return sentences


def quantization(min_bits: pd.DataFrame) -> list[str]:
    """Per dataset and (method, pipeline): the fewest and most bits a model needed."""
    table = min_bits[(min_bits["sparsity"].fillna(0) == 0) & (min_bits["n_bits"] >= 2)]
    rank = {d: i for i, d in enumerate(by_difficulty(table["dataset"]))}
    table = table.sort_values("dataset", key=lambda s: s.map(rank), kind="stable")
    sentences = []
    for (dataset, method, pipeline), group in table.groupby(
        ["dataset", "method", "pipeline"], sort=False
    ):
        ok = group[group["qualifies"].astype(bool)]
        text = f"{dataset_title(dataset)}, {method} ({pipeline}): "
        if ok.empty:
            text += "no model keeps its accuracy at any tested width"
        else:
            low = ok.loc[ok["min_bits"].astype(float).idxmin()]
            high = ok.loc[ok["min_bits"].astype(float).idxmax()]
            if len(ok) > 1 and high["min_bits"] == low["min_bits"]:
                text += f"{_every(len(ok))} need {low['min_bits']:g} bits"
            else:
                text += f"{low['model']} needs {low['min_bits']:g} bits"
                if high["min_bits"] != low["min_bits"]:
                    text += f", {high['model']} {high['min_bits']:g}"
            failing = group.loc[~group["qualifies"].astype(bool), "model"]
            if len(failing):
                text += f"; no tested width suffices for {', '.join(map(str, failing))}"
        sentences.append(text + ".")
    return sentences


def sensitivity(
    dataset: str, slices: Mapping[str, pd.DataFrame], names: Mapping[str, str]
) -> list[str]:
    """Per varied hyperparameter: the architectures whose accuracy it moves most and least.

    ``slices`` holds, per hyperparameter, each architecture's configurations
    along it with the other held at its chosen value (mean accuracy over seeds).
    """
    sentences = []
    for varied, rows in slices.items():
        spans = []  # (accuracy range, model, worst row, best row)
        for model, line in rows.groupby("model", sort=False):
            if len(line) < 2:
                continue
            low, high = line.loc[line["acc_mean"].idxmin()], line.loc[line["acc_mean"].idxmax()]
            spans.append((high["acc_mean"] - low["acc_mean"], str(model), low, high))
        if not spans:
            continue
        spans.sort(key=lambda s: s[0])
        spread, model, low, high = spans[-1]
        other = next(n for h, n in names.items() if h != varied)
        name = names[varied]
        text = (
            f"{dataset_title(dataset)}: over the {name}s tried "
            f"(each architecture at its chosen {other}), "
            f"accuracy moves by up to {100 * spread:.1f} pp, for {model} ({_pct(low['acc_mean'])} "
            f"at {name} {style.number(low[varied])}, {_pct(high['acc_mean'])} at "
            f"{style.number(high[varied])})"
        )
        if len(spans) > 1:
            text += f", and by {100 * spans[0][0]:.1f} pp for {spans[0][1]}"
        sentences.append(text + ".")
    return sentences


def hpspace(result: HpSpaceResult, key: tuple) -> str:
    """For one model: where θ* is, whether pruning moved it, and the worst cost of not retuning."""
    dataset, family, base = key
    rows = result.ellipses[result.ellipses[GROUP].eq(list(key)).all(axis=1)]
    ref = rows[rows["variant"] == result.reference]
    head = f"{base} on {dataset_title(dataset)}"
    if ref.empty or not bool(ref["learned"].iloc[0]):
        return f"{head}: the {result.reference} model learned nothing on this grid."
    r = ref.iloc[0]
    text = (
        f"{head}: the best configuration is lr {style.number(10 ** r['best_log_lr'])}, "
        f"weight decay {style.number(10 ** r['best_log_wd'])} (f = {r['best_f']:.1f} %)"
    )
    others = rows[(rows["variant"] != result.reference) & rows["learned"].astype(bool)]
    if len(others):
        moved = int(others["optimum_moved"].fillna(False).astype(bool).sum())
        text += f"; pruning moved the optimum by more than one grid step for {moved} of "
        text += f"{len(others)} variant{'s' if len(others) != 1 else ''}"
    at_edge = rows[rows["touches_edge"].astype(bool)]
    if len(at_edge) and result.rois:
        where = "; ".join(f"{e.variant} ({e.edges})" for e in at_edge.itertuples(index=False))
        text += (
            f"; the {max(result.rois):g}-ROI reaches the grid's edge for {where}, so θ* there "
            "is a bound and the optimum may lie outside the grid (hpspace.extend_grid grows it)"
        )
    risk = result.risk[result.risk[GROUP].eq(list(key)).all(axis=1)]
    risk = risk[(risk["variant"] != result.reference) & (risk["points"] > 0)]
    if len(risk):
        worst = risk.loc[risk["d_mean"].astype(float).idxmax()]
        text += (
            f"; reusing the {result.reference} model's {result.risk_roi:g}-ROI costs at most "
            f"{worst['d_mean']:.2f} pp on average ({worst['variant']})"
        )
    return text + "."


def p_min(value: float, at_edge: bool) -> str:
    """A P_min as tables and findings write it: a bound when it is the largest size tested."""
    if not np.isfinite(value):
        return "not reached"
    return f"≥ {value:,.0f}, at the largest size tested" if at_edge else f"{value:,.0f}"


def _trend(p_min: pd.Series, at_edge: pd.Series) -> str:
    """'rises from 1.2k on MNIST-1D to ≥ 12.7k on MNIST': P_min along datasets, easy to hard.

    "Rises" and "falls" only for a monotone sequence; a P_min that goes up and
    down is listed as such, not summed up by its two ends. A P_min at the
    largest size tested is a bound, written "≥"; a trend into a bound only
    says P_min is at least that large there.
    """
    values = [("≥ " if edge else "") + _params(v) for v, edge in zip(p_min, at_edge, strict=True)]
    first, last = float(p_min.iloc[0]), float(p_min.iloc[-1])
    if (p_min == first).all() and not at_edge.any():
        return f"is {values[0]} on {_join([dataset_title(d) for d in p_min.index])}"
    steps = [f"{v} on {dataset_title(d)}" for v, d in zip(values, p_min.index, strict=True)]
    if (p_min == first).all():
        return f"is {_join(steps)}"
    changes = np.diff(p_min.to_numpy(float))
    if not ((changes >= 0).all() or (changes <= 0).all()):
        return f"does not change monotonically with dataset difficulty: {', '.join(steps)}"
    verb = "rises" if last > first else "falls"
    via = "".join(f", {step}" for step in steps[1:-1])
    return f"{verb} from {steps[0]}{via} to {steps[-1]}"


def _every(n: int) -> str:
    return "both models" if n == 2 else f"all {n} models"


def _join(names: Sequence[object]) -> str:
    names = [str(n) for n in names]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _p_min(row: Any) -> str:
    if not row.reached:
        sizes = row.n_architectures
        return f"P_min not reached: not even the largest of its {sizes} sizes qualifies"
    best = f"best mean accuracy {_pct(row.best_acc)}"
    if row.p_min_at_edge:
        return (
            f"P_min {p_min(row.p_min, True)} ({best}): only the largest architecture qualifies, "
            "so this is a bound, not a found minimum; train larger ones to find it"
        )
    return f"P_min = {p_min(row.p_min, False)} parameters ({best})"


def _params(value: float) -> str:
    return style.count(float(value))


def _pct(fraction: float) -> str:
    return f"{100 * float(fraction):.1f} %"


def _share(fraction: float) -> str:
    return f"{100 * float(fraction):.0f} %"
