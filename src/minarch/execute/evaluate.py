"""Evaluations: one-shot pruning and post-training quantization of finished runs.

An evaluation measures a trained run without training it, so it is cheap,
recorded per (run, setting) and never repeated: re-running a study measures
only what is missing. A setting that cannot be applied to a model (say, int8
for a family the backend cannot convert) is recorded with its error, so the
report can say so instead of retrying forever.
"""

from __future__ import annotations

import torch
from rich.console import Console

from minarch.errors import MinarchError, WeightsError
from minarch.execute.compress import compress, load_trained, measure
from minarch.execute.datasets import DatasetCache
from minarch.execute.progress import progress_bar
from minarch.spec import RunConfig, StudySpec
from minarch.spec.derive import oneshot_settings, setting_key
from minarch.spec.settings import Setting
from minarch.store import Store


def evaluation_settings(study: StudySpec, config: RunConfig) -> list[Setting]:
    """What the study measures on a finished run.

    Ordinary runs get the one-shot pruning and post-training quantization
    settings; a quantization-aware run gets its own quantization, applied to
    the weights it learned.
    """
    if config.derived is not None:
        return [config.derived.setting] if config.derived.pipeline == "qat" else []
    return oneshot_settings(study)


def evaluate_study(
    study_name: str,
    study: StudySpec,
    configs: dict[str, RunConfig],
    store: Store,
    datasets: DatasetCache,
    *,
    console: Console,
) -> int:
    """Measure every missing evaluation of the study's finished runs; return how many."""
    recorded = {(e.run_id, e.key) for e in store.evaluations(study=study_name)}
    jobs = []
    for record in store.runs(study=study_name, states=["done"]):
        config = configs.get(record.id)
        if config is None:
            continue
        missing = [
            s
            for s in evaluation_settings(study, config)
            if (record.id, setting_key(s)) not in recorded
        ]
        if missing:
            jobs.append((config, missing))
    total = sum(len(settings) for _, settings in jobs)
    if not total:
        return 0
    with progress_bar(console) as progress:
        task = progress.add_task("evaluations", total=total)
        for config, settings in jobs:
            data = datasets.get(config.dataset)
            try:
                trained = load_trained(config, store, data).to(datasets.device)
            except WeightsError as exc:  # measure the other runs; the next run retries this one
                progress.console.print(f"[yellow]not evaluated[/yellow]: {exc}")
                progress.advance(task, len(settings))
                continue
            for setting in settings:
                key, measured = setting_key(setting), _measured(trained, setting, data)
                store.record_evaluation(config.id, key, setting.to_dict(), measured)
                progress.advance(task)
    return total


def _measured(model: torch.nn.Module, setting: Setting, data) -> dict:
    try:
        return measure(compress(model, setting, data), data)
    except MinarchError as exc:
        return {"error": str(exc)}
