"""Planning a study into runs and packs, and executing them against the store."""

from minarch.execute.evaluate import evaluate_study
from minarch.execute.local import DatasetCache, Summary, execute, run_metrics
from minarch.execute.parallel import execute_in_workers
from minarch.execute.planner import Plan, PlannedRun, plan_study

__all__ = [
    "DatasetCache",
    "Plan",
    "PlannedRun",
    "Summary",
    "evaluate_study",
    "execute",
    "execute_in_workers",
    "plan_study",
    "run_metrics",
]
