"""Evaluations: one-shot pruning and post-training quantization of finished runs.

An evaluation measures a trained run without training it, so it is cheap,
recorded per (run, setting) and never repeated: re-running a study measures
only what is missing. A setting that cannot be applied to a model (say, int8
for a family the backend cannot convert) is recorded with its error, so the
report can say so instead of retrying forever.

Evaluations run where their run trained: the trainer that finishes a pack
measures its runs at once (``PackTrainer``), on its worker's one thread, so
they overlap the rest of the training. ``evaluate_study`` then measures what
is still missing (runs trained before, or a trainer stopped between the two)
in the driving process, with the same code and thread count: the numbers are
the same wherever an evaluation ran.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from rich.console import Console

from minarch.errors import MinarchError, WeightsError
from minarch.execute.progress import progress_bar
from minarch.spec import RunConfig, StudySpec
from minarch.spec.derive import oneshot_settings, setting_key
from minarch.spec.settings import Setting
from minarch.store import Store

if TYPE_CHECKING:
    from minarch.data import Dataset
    from minarch.execute.datasets import DatasetCache

Evaluations = Mapping[str, Sequence[Setting]]  # run id -> what is measured once it is done
Jobs = list[tuple[RunConfig, list[Setting]]]  # finished runs, each with what it still lacks


def evaluation_settings(study: StudySpec, config: RunConfig) -> list[Setting]:
    """What the study measures on a finished run.

    Ordinary runs get the one-shot pruning and post-training quantization
    settings; a quantization-aware run gets its own quantization, applied to
    the weights it learned.
    """
    if config.derived is not None:
        return [config.derived.setting] if config.derived.pipeline == "qat" else []
    return oneshot_settings(study)


def evaluation_plan(study: StudySpec, configs: Mapping[str, RunConfig]) -> dict[str, tuple]:
    """Every run's evaluations, handed to the trainers (runs without any left out)."""
    plan = {run_id: tuple(evaluation_settings(study, c)) for run_id, c in configs.items()}
    return {run_id: settings for run_id, settings in plan.items() if settings}


def evaluate_run(
    config: RunConfig,
    settings: Sequence[Setting],
    store: Store,
    data: Dataset,
    *,
    measured: Callable[[], None] = lambda: None,
) -> None:
    """Load the run's trained model once and record each setting's measurement."""
    # torch, the pruners and the quantizers: only where something is measured
    from minarch.execute.compress import compress, load_trained, measure

    trained = load_trained(config, store, data).to(data.val_x.device)
    for setting in settings:
        try:
            result = measure(compress(trained, setting, data), data)
        except MinarchError as exc:
            result = {"error": str(exc)}
        store.record_evaluation(config.id, setting_key(setting), setting.to_dict(), result)
        measured()


def missing_evaluations(
    study_name: str, study: StudySpec, configs: Mapping[str, RunConfig], store: Store
) -> Jobs:
    """The study's finished runs that lack an evaluation, each with the settings it lacks."""
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
    return jobs


def evaluate_study(
    jobs: Jobs, store: Store, datasets: DatasetCache, *, threads: int, console: Console
) -> None:
    """Measure the evaluations ``missing_evaluations`` found, with ``threads`` intra-op threads."""
    from minarch.execute.policy import intra_op_threads  # torch, as measuring needs

    total = sum(len(settings) for _, settings in jobs)
    with intra_op_threads(threads), progress_bar(console) as progress:
        task = progress.add_task("evaluations", total=total)
        for config, settings in jobs:
            data = datasets.get(config.dataset)
            try:
                evaluate_run(config, settings, store, data, measured=lambda: progress.advance(task))
            except WeightsError as exc:  # measure the other runs; the next run retries this one
                progress.console.print(f"[yellow]not evaluated[/yellow]: {exc}")
                progress.advance(task, len(settings))
