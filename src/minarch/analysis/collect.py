"""The compression table: every pruning and quantization result beside its uncompressed run.

Results come from two places, evaluations (one-shot pruning, post-training
quantization) and derived runs (fine-tuned, retrained, iteratively pruned);
this is where both become rows of one table, so analyses never care which.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import pandas as pd

from minarch.analysis.compression import COMPRESSION_COLUMNS
from minarch.data import dataset_info
from minarch.errors import MinarchError
from minarch.spec.settings import (
    ImpRound,
    Int8,
    PrunedThenQuantized,
    Setting,
    StructuredPrune,
    UnstructuredPrune,
    from_dict,
)
from minarch.store import EvaluationRecord

TRAINED_PIPELINES = ("finetune", "retrain", "imp")


def compression_frame(runs: pd.DataFrame, evaluations: Iterable[EvaluationRecord]) -> pd.DataFrame:
    """One row per (run, setting) in the columns of ``COMPRESSION_COLUMNS``.

    ``runs`` is a store runs table (``Store.runs_frame``) holding the base runs
    and the derived runs; rows whose base run is missing or unfinished are left out.
    """
    by_id = {row["run_id"]: row for row in runs.drop_duplicates("run_id").to_dict("records")}
    rows = []
    for evaluation in evaluations:
        run = by_id.get(evaluation.run_id)
        if run is None:
            continue
        derived = _derivation(run)
        base = by_id.get(derived["base"]) if derived else run
        pipeline = derived["pipeline"] if derived else None
        setting = from_dict(evaluation.setting)
        rows.append(
            _row(base, run, setting, evaluation.metrics, pipeline) if base is not None else None
        )
    for run in by_id.values():
        derived = _derivation(run)
        if derived is None or derived["pipeline"] not in TRAINED_PIPELINES:
            continue
        if run["state"] not in ("done", "diverged") or derived["base"] not in by_id:
            continue
        base, setting = by_id[derived["base"]], from_dict(derived["setting"])
        metrics = {
            "val_acc": 0.0 if run["state"] == "diverged" else run.get("final_val_acc"),
            "val_loss": run.get("final_val_loss"),
            "params_after": run["params"],
            "flops_after": run["flops"],
        }
        if isinstance(setting, StructuredPrune):
            metrics["sparsity"] = 1 - run["params"] / base["params"]
            metrics["flops_remaining"] = run["flops"] / base["flops"]
        rows.append(_row(base, run, setting, metrics, derived["pipeline"]))
    frame = pd.DataFrame([r for r in rows if r is not None])
    extra = [c for c in frame.columns if c not in COMPRESSION_COLUMNS]
    return frame.reindex(columns=[*COMPRESSION_COLUMNS, *extra])


def _row(
    base: dict[str, Any],
    run: dict[str, Any],
    setting: Setting,
    metrics: dict[str, Any],
    pipeline: str | None,
) -> dict[str, Any] | None:
    if base.get("state") != "done":
        return None
    kind = setting.kind
    if pipeline is None:
        ptq = "int8" if isinstance(setting, Int8) else "ptq"
        pipeline = "oneshot" if kind == "prune" else ptq
    # The nominal target (exact up to one weight), so seeds and models share a grid.
    nominal = setting.pruning if isinstance(setting, PrunedThenQuantized) else setting
    sparsity = (
        nominal.sparsity if isinstance(nominal, UnstructuredPrune) else metrics.get("sparsity")
    )
    flops_remaining = setting.flops_remaining if isinstance(setting, StructuredPrune) else math.nan
    return {
        "run_id": run["run_id"],
        "dataset": base["dataset"],
        "family": base["family"],
        "model": base["model"],
        "depth": base.get("config.model.depth", math.nan),
        "params": base["params"],
        "flops": base["flops"],
        "seed": base["seed"],
        "lr": base["lr"],
        "weight_decay": base["weight_decay"],
        "chance": _chance(base),
        "base_val_acc": base.get("final_val_acc"),
        "kind": kind,
        "pipeline": pipeline,
        "method": setting.method,
        "sparsity": math.nan if sparsity is None else sparsity,
        "flops_remaining": metrics.get("flops_remaining", flops_remaining),
        "bits": setting.bits if kind == "quant" else math.nan,
        "round": setting.round if isinstance(setting, ImpRound) else math.nan,
        **{k: v for k, v in metrics.items() if k not in ("sparsity", "flops_remaining")},
    }


def _derivation(run: dict[str, Any]) -> dict[str, Any] | None:
    if run.get("variant", "base") == "base":
        return None
    return {
        "pipeline": run["config.derived.pipeline"],
        "base": run["config.derived.base"],
        "setting": {
            key.removeprefix("config.derived.setting."): value
            for key, value in run.items()
            if key.startswith("config.derived.setting.") and _present(value)
        },
    }


def _present(value: Any) -> bool:
    return not (isinstance(value, float) and math.isnan(value))


def _chance(run: dict[str, Any]) -> float:
    """1 / classes of the run's dataset; NaN when its files are not at hand."""
    path = run.get("config.dataset.path")
    size = run.get("config.dataset.image_size")
    try:
        info = dataset_info(
            run["dataset"],
            path=path if isinstance(path, str) else None,
            image_size=int(size) if _present(size) and size is not None else None,
        )
    except MinarchError:
        return math.nan
    return 1 / info.num_classes
