"""Run a study end to end over any executor: check, register, train, evaluate, extend.

Written once for every executor: the executor trains pending runs and
evaluates each pack as it finishes; everything before (data checks,
registering runs) and after (evaluations still missing, extending the
hyperparameter grid and the model sizes) happens here, in the driving process.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rich.console import Console

from minarch.analysis import grid_extensions, size_extensions
from minarch.errors import Interrupted
from minarch.execute.claims import PARENT_POLL_SECONDS, trained_elsewhere
from minarch.execute.evaluate import evaluate_study, evaluation_plan, missing_evaluations
from minarch.execute.planner import DEFAULT_MAX_RUNS, Plan, plan_study
from minarch.execute.signals import interruptible
from minarch.spec.sizes import SizeKey, extension_rounds, next_sizes
from minarch.store import Store

if TYPE_CHECKING:
    from minarch.execute.datasets import DatasetCache
    from minarch.execute.executor import Executor

FINISHED = ("done", "diverged")

Start = Callable[[], "tuple[Executor, DatasetCache]"]
"""Sets up training on its first call and returns the same pair on every call (a
``functools.cache``): the executor, and this process's datasets (data checks, evaluations).

Placing packs loads PyTorch (seconds), so ``run_study`` calls it only when
something is left to train or measure: a study that is done never does.
"""


@dataclass
class Summary:
    """What a ``run`` did: final states of the runs it found unfinished, and what is left."""

    trained: dict[str, int] = field(default_factory=dict)  # state -> count
    elsewhere: int = 0  # of those, the runs that other processes (another driver) ended
    seconds: float = 0.0
    remaining: int = 0  # runs still pending or running (children of parents nobody trains)


def run_study(
    the_plan: Plan,
    store: Store,
    start: Start,
    console: Console,
    *,
    max_runs: int = DEFAULT_MAX_RUNS,
) -> Summary:
    """Train, evaluate and (if asked) extend ``the_plan``'s study; the store ends consistent.

    All data is loaded before anything is written, so missing or corrupt files
    leave the store unchanged. SIGINT and SIGTERM raise ``Interrupted`` with
    the number of runs the next ``run`` resumes.
    """
    name, started = the_plan.study.name, time.perf_counter()
    executors: list[Executor] = []  # the one ``start`` gave, once something needed it

    def start_once() -> tuple[Executor, DatasetCache]:
        executor, datasets = start()
        executors[:] = [executor]
        return executor, datasets

    configs = {r.config.id: r.config for r in the_plan.runs}
    finished = _finished(store, configs)
    unfinished = set(configs) - finished
    where = ""
    if unfinished:
        executor, datasets = start_once()
        for config in configs.values():
            if config.id in unfinished:
                datasets.get(config.dataset)  # missing or corrupt data fails before any write
        where = f"; {executor.description} on {executor.workspace.device}"
        _note_slow_precision({configs[i].training.precision for i in unfinished}, executor, console)
    added = store.register_study(name, the_plan.text, [r.new_run() for r in the_plan.runs])
    console.print(
        f"study [bold]{name}[/bold]: {len(configs)} runs, {len(finished)} finished, "
        f"{len(unfinished)} to train ({added} new){where}"
    )
    try:
        with interruptible():
            _train_round(the_plan, configs, store, start_once, console)
            unfinished |= _extend(the_plan, store, start_once, console, max_runs)
    except KeyboardInterrupt as exc:
        signum = exc.signum if isinstance(exc, Interrupted) else Interrupted().signum
        left = store.runs(study=name, states=["pending", "running", "failed"])
        raise Interrupted(signum, remaining=len(left)) from None
    runs = [r for r in store.runs(study=name) if r.id in unfinished]
    ended = [r for r in runs if r.state not in ("pending", "running")]
    ours = executors[0].owners if executors else set()
    return Summary(
        trained=dict(Counter(r.state for r in ended)),
        elsewhere=sum(r.owner not in ours for r in ended),
        seconds=time.perf_counter() - started,
        remaining=len(runs) - len(ended),
    )


def _note_slow_precision(precisions: set[str], executor: Executor, console: Console) -> None:
    """Say so before training when a requested precision is slower than fp32 on this device."""
    import torch

    from minarch.train.precision import slow_precision

    device = torch.device(executor.workspace.device)
    for note in filter(None, (slow_precision(p, device) for p in sorted(precisions))):
        console.print(f"[yellow]{note}[/yellow]")


def _train_round(the_plan, configs, store, start: Start, console) -> None:
    """Train what is pending (each trainer evaluates its packs), wait for what
    other processes train, then evaluate what is still missing.

    Two drivers can share a study (a SLURM array, a second terminal): what
    the other claimed is neither ours to train nor a failure, so this one
    waits and then trains what became trainable (children of the runs it
    waited for, runs of a trainer that died meanwhile).
    """
    study, name = the_plan.study, the_plan.study.name
    evaluations = evaluation_plan(study, configs)
    if len(_finished(store, configs)) < len(configs):  # starting workers costs seconds
        start()[0].train(name, configs, evaluations, store, console)
    while others := trained_elsewhere(store, name, configs):
        console.print(f"waiting for {others} runs that other processes are training")
        while trained_elsewhere(store, name, configs):
            time.sleep(PARENT_POLL_SECONDS)
        start()[0].train(name, configs, evaluations, store, console)
    if jobs := missing_evaluations(name, study, configs, store):
        executor, datasets = start()
        threads = executor.workspace.threads
        evaluate_study(jobs, store, datasets, threads=threads, console=console)


def _extend(
    the_plan: Plan, store: Store, start: Start, console: Console, max_runs: int
) -> set[str]:
    """Grow the study where its results touch an edge, then train what was added.

    The lr x wd grid grows where a 1.0-ROI touches its edge
    (``hpspace.extend_grid``); a ``models`` entry with ``extend: true`` grows
    by a halved or doubled size where P_stable or P_min sits at an end of the
    sizes tested. Each round adds at most one value per edge and field; the
    proposals depend only on finished results, so a resumed study extends the
    same way. Returns the ids of the runs it added.
    """
    study, name = the_plan.study, the_plan.study.name
    grid_rounds = study.hpspace.max_extensions if study.hpspace.extend_grid else 0
    size_rounds = extension_rounds(study.models)
    extra_lr: list[float] = []
    extra_wd: list[float] = []
    extra_sizes: dict[SizeKey, tuple] = {}
    added: set[str] = set()
    for round_ in range(max(grid_rounds, size_rounds)):
        runs = store.runs_frame(study=name)
        new_lr, new_wd, new_sizes = [], [], {}
        if round_ < grid_rounds:
            new_lr, new_wd = grid_extensions(runs, x=max(study.analysis.roi))
            new_lr = [v for v in new_lr if v not in extra_lr]
            new_wd = [v for v in new_wd if v not in extra_wd]
        if round_ < size_rounds:
            directions = size_extensions(runs, store.epochs_frame(study=name), study.analysis)
            new_sizes = next_sizes(study, extra_sizes, directions, round_)
        if not new_lr and not new_wd and not new_sizes:
            break
        extra_lr += new_lr
        extra_wd += new_wd
        for key, values in new_sizes.items():
            extra_sizes[key] = (*extra_sizes.get(key, ()), *values)
        console.print(_extension_line(study, new_lr, new_wd, new_sizes))
        extended = plan_study(
            study,
            the_plan.text,
            extra_lr=extra_lr,
            extra_wd=extra_wd,
            extra_sizes=extra_sizes,
            max_runs=max_runs,
        )
        configs = {r.config.id: r.config for r in extended.runs}
        added |= set(configs) - _finished(store, configs)
        store.register_study(name, the_plan.text, [r.new_run() for r in extended.runs])
        _train_round(extended, configs, store, start, console)
    return added


def _extension_line(study, new_lr, new_wd, new_sizes) -> str:
    parts = []
    if new_lr or new_wd:
        parts.append(
            f"lr {', '.join(f'{v:.3g}' for v in new_lr) or '-'}; "
            f"weight decay {', '.join(f'{v:.3g}' for v in new_wd) or '-'}"
        )
    for (i, name), values in new_sizes.items():
        family = study.models[i]["family"]
        parts.append(f"models[{i}] ({family}) {name} {', '.join(f'{v:g}' for v in values)}")
    return "extending " + "; ".join(parts)


def _finished(store: Store, configs) -> set[str]:
    return {r.id for r in store.runs(states=list(FINISHED)) if r.id in configs}
