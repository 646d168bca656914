"""Running a study: plan it into runs and packs, train them through an executor, evaluate.

``run_study`` drives any ``Executor``: ``InProcessExecutor`` (this process),
``WorkerExecutor`` (local worker processes), ``RayExecutor`` (a Ray cluster,
in ``execute.ray_executor``, which imports Ray); the store's claims decide
what is done, so executors of every kind can share one study. Each name is
imported on first use, so a verb that only writes a report loads no torch.
"""

from minarch.lazy import on_first_use

__getattr__ = on_first_use(
    __name__,
    {
        "DatasetCache": "datasets",
        "evaluate_study": "evaluate",
        "Executor": "executor",
        "InProcessExecutor": "executor",
        "EXECUTORS": "executors",
        "Placement": "executors",
        "RayOptions": "executors",
        "make_executor": "executors",
        "place": "executors",
        "memory_share": "policy",
        "resolve_engine": "policy",
        "Pack": "pack",
        "group_packs": "pack",
        "Plan": "planner",
        "PlannedRun": "planner",
        "plan_study": "planner",
        "resolve_device": "policy",
        "resolve_threads": "policy",
        "resolve_workers": "policy",
        "Summary": "study",
        "run_study": "study",
        "WorkerExecutor": "workers",
        "Workspace": "workspace",
        "artifacts_dir": "workspace",
        "remove_stale_weights": "workspace",
        "writable_dir": "workspace",
    },
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
