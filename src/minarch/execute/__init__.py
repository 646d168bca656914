"""Planning a study into runs and packs, and executing them against the store."""

from minarch.execute.local import DatasetCache, Summary, execute, owner_id, run_metrics
from minarch.execute.planner import Plan, PlannedRun, plan_study

__all__ = [
    "DatasetCache",
    "Plan",
    "PlannedRun",
    "Summary",
    "execute",
    "owner_id",
    "plan_study",
    "run_metrics",
]
