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

from minarch.analysis import Analysis, AnalysisSpec, HpSpaceResult
from minarch.analysis.difficulty import in_order
from minarch.analysis.hpspace import GROUP
from minarch.analysis.minimal import bound
from minarch.analysis.statistics import spearman
from minarch.reporting import style
from minarch.reporting.prose import relation_words
from minarch.reporting.style import dataset_title


def accuracy(archs: pd.DataFrame, order: Sequence[str], t: AnalysisSpec) -> list[str]:
    """Per dataset: the best architecture (all of them when tied), and how accuracy goes with size.

    ``archs`` holds each architecture's chosen configuration and its
    accuracy, the mean final validation accuracy over all its seeds
    (``summary.architectures``), the one number every table shows.
    """
    archs = archs.dropna(subset=["acc_mean"])
    sentences = []
    for dataset in in_order(archs["dataset"], order):
        here = archs[archs["dataset"] == dataset]
        top = here[here["acc_mean"].astype(float) == here["acc_mean"].astype(float).max()]
        best = top.iloc[0]
        who = (
            f"the best architecture is {best['model']} ({_params(best['params'])} parameters)"
            if len(top) == 1
            else f"the best architectures are {_tied(top)}"
        )
        text = f"{dataset_title(dataset)}: {who} at {_pct(best['acc_mean'])}"
        growth = []
        for family, fam in here.groupby("family", sort=True):
            fam = fam.sort_values("params")
            small, large = fam.iloc[0], fam.iloc[-1]
            if len(fam) > 1:
                trend = spearman(fam["params"], fam["acc_mean"], names=("size", "accuracy"))
                growth.append(
                    f"{family} from {_pct(small['acc_mean'])} ({_params(small['params'])} "
                    f"parameters) to {_pct(large['acc_mean'])} ({_params(large['params'])}), "
                    f"accuracy {relation_words('parameter count', trend, t)}"
                )
        sentences.append(text + (f"; by size, {'; '.join(growth)}." if growth else "."))
    return sentences


def curves(curves: pd.DataFrame, order: Sequence[str]) -> list[str]:
    """Per dataset: how many epochs, and the largest change in the last one (still learning?)."""
    sentences = []
    for dataset in in_order(curves["dataset"], order):
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
    """How P_min goes with dataset difficulty per family, each P_min, and the run regimes.

    ``datasets`` are in order of difficulty, easy to hard. The trend is
    Spearman's ρ of P_min against that order; a P_min not reached ranks
    above every size, and a bound counts at its value.
    """
    minimal, t = result.minimal, result.thresholds
    sentences = []
    if len(datasets) > 1:
        for family, group in minimal.groupby("family", sort=True):
            group = group.set_index("dataset")
            group = group.loc[[d for d in datasets if d in group.index]]
            if len(group) < 2 or (group["p_min_edge"] == "not_reached").all():
                continue
            ranked = group["p_min"].astype(float).fillna(np.inf)
            trend = spearman(range(len(group)), ranked, names=("difficulty", "P_min"))
            steps = ", ".join(
                f"{bound(row.p_min, row.p_min_edge, row.largest_params)} on {dataset_title(d)}"
                for d, row in zip(group.index, group.itertuples(), strict=True)
            )
            words = relation_words("dataset difficulty", trend, t)
            sentences.append(f"For {family}, P_min {words}: {steps}.")
    for dataset in datasets:
        for row in minimal[minimal["dataset"] == dataset].itertuples(index=False):
            sentences.append(f"{row.family} on {dataset_title(dataset)}: {_p_min(row, t)}.")
    counts = result.runs["regime"].value_counts()
    total = int(counts.sum())
    if total:
        parts = ", ".join(f"{int(counts.get(r, 0))} {r}" for r in ("learning", "overfitting"))
        sentences.append(
            f"Of {total} finished runs, {parts} and {int(counts.get('unstable', 0))} unstable."
        )
    return sentences


def pruning(
    redundancy: pd.DataFrame, curves: pd.DataFrame, delta: float, order: Sequence[str]
) -> list[str]:
    """Per dataset and (method, pipeline): R_δ's range over models, the cost at the last point."""
    sentences = []
    keys = ["dataset", "method", "pipeline"]
    rank = {d: i for i, d in enumerate(in_order(redundancy["dataset"], order))}
    ordered = redundancy.sort_values("dataset", key=lambda s: s.map(rank), kind="stable")
    for (dataset, method, pipeline), group in ordered.groupby(keys, sort=False):
        what = "of FLOPs" if bool(group["structured"].iloc[0]) else "of the weights"
        r = group["r_mean"].astype(float)
        most, least = group[r == r.max()], group[r == r.min()]
        same = len(group) > 1 and r.max() == r.min()
        text = (
            f"{dataset_title(dataset)}, {method} ({pipeline}): "
            f"accuracy stays within {100 * delta:g} pp up to "
            f"{_share(r.max())} {what} removed for " + (_every(len(group)) if same else _tied(most))
        )
        if not same and len(group) > 1:
            text += f", {_share(r.min())} for {_tied(least)}"
        most = most.iloc[0]
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


def quantization(min_bits: pd.DataFrame, order: Sequence[str]) -> list[str]:
    """Per dataset and (method, pipeline): the fewest and most bits a model needed."""
    table = min_bits[(min_bits["sparsity"].fillna(0) == 0) & (min_bits["n_bits"] >= 2)]
    rank = {d: i for i, d in enumerate(in_order(table["dataset"], order))}
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
            bits = ok["min_bits"].astype(float)
            low, high = ok[bits == bits.min()], ok[bits == bits.max()]
            if len(ok) > 1 and bits.max() == bits.min():
                text += f"{_every(len(ok))} need {bits.min():g} bits"
            else:
                verb = "needs" if len(low) == 1 else "need"
                text += f"{_tied(low)} {verb} {bits.min():g} bits"
                if bits.max() != bits.min():
                    text += f", {_tied(high)} {bits.max():g}"
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


def _every(n: int) -> str:
    return "both models" if n == 2 else f"all {n} models"


def _join(names: Sequence[object]) -> str:
    names = [str(n) for n in names]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _p_min(row: Any, t: AnalysisSpec) -> str:
    source = {
        "target": "the study's target",
        "all families": f"{_share(t.accuracy_fraction)} of the best of any family",
        "family": f"{_share(t.accuracy_fraction)} of the family's best",
    }[row.bar_source]
    bar = f"accuracy bar {_pct(row.accuracy_bar)}, {source}"
    stable = _named("P_stable", bound(row.p_stable, row.p_stable_edge, row.largest_params))
    text = _named("P_min", bound(row.p_min, row.p_min_edge, row.largest_params))
    if row.p_min_edge == "not_reached":
        text += f": none of its {row.n_architectures} sizes reaches the {bar}"
    else:
        text += f" parameters ({bar})"
    text += f"; {stable}"
    if row.p_min_edge == "upper":
        text += (
            "; only the largest size qualifies, so this is a bound: train larger ones to find it"
        )
    if row.p_min_edge == "lower":
        text += "; the smallest size tested already qualifies: train smaller ones to find it"
    if row.interleaved:
        text += (
            f"; overfitting starts at P_over = {row.p_over:,.0f}, at or below P_min, so the "
            "regimes interleave rather than forming bands"
        )
    return text


def _named(name: str, value: str) -> str:
    """'P_min = 1,210', but 'P_min ≥ 6,538' and 'P_min not reached (...)' for bounds."""
    return f"{name} = {value}" if value[0].isdigit() else f"{name} {value}"


def _tied(rows: pd.DataFrame) -> str:
    """One model's name, or tied models by name (up to four) or by their count."""
    names = [str(m) for m in rows["model"]]
    if len(names) == 1:
        return names[0]
    return f"{_join(names)} (tied)" if len(names) <= 4 else f"{len(names)} tied models"


def _params(value: float) -> str:
    return style.count(float(value))


def _pct(fraction: float) -> str:
    return f"{100 * float(fraction):.1f} %"


def _share(fraction: float) -> str:
    return f"{100 * float(fraction):.0f} %"
