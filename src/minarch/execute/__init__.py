"""Running a study: plan it into runs and packs, train them through an executor, evaluate.

``run_study`` drives any ``Executor``: ``InProcessExecutor`` (this process),
``WorkerExecutor`` (local worker processes), ``RayExecutor`` (a Ray cluster,
in ``execute.ray_executor``, which imports Ray); the store's claims decide
what is done, so executors of every kind can share one study.
"""

from minarch.execute.datasets import DatasetCache
from minarch.execute.evaluate import evaluate_study
from minarch.execute.executor import Executor, InProcessExecutor
from minarch.execute.executors import EXECUTORS, Placement, RayOptions, make_executor, place
from minarch.execute.pack import Pack, group_packs
from minarch.execute.planner import Plan, PlannedRun, plan_study
from minarch.execute.policy import (
    memory_share,
    resolve_device,
    resolve_engine,
    resolve_threads,
    resolve_workers,
)
from minarch.execute.study import Summary, run_study
from minarch.execute.workers import WorkerExecutor
from minarch.execute.workspace import (
    Workspace,
    artifacts_dir,
    remove_stale_weights,
    writable_dir,
)

__all__ = [
    "EXECUTORS",
    "DatasetCache",
    "Executor",
    "InProcessExecutor",
    "Pack",
    "Placement",
    "Plan",
    "PlannedRun",
    "RayOptions",
    "Summary",
    "WorkerExecutor",
    "Workspace",
    "artifacts_dir",
    "evaluate_study",
    "group_packs",
    "make_executor",
    "memory_share",
    "place",
    "plan_study",
    "remove_stale_weights",
    "resolve_device",
    "resolve_engine",
    "resolve_threads",
    "resolve_workers",
    "run_study",
    "writable_dir",
]
