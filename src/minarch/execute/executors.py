"""The executors by name, and the one rule that picks one for a run."""

from __future__ import annotations

from minarch.errors import MinarchError
from minarch.execute.datasets import DatasetCache
from minarch.execute.executor import Executor, InProcessExecutor
from minarch.execute.workers import WorkerExecutor
from minarch.execute.workspace import Workspace

EXECUTORS = ("local",)


def make_executor(kind: str, workspace: Workspace, datasets: DatasetCache) -> Executor:
    """``local``: this process for one worker (sharing its loaded datasets), else processes."""
    if kind not in EXECUTORS:
        raise MinarchError(f"--executor: expected one of {', '.join(EXECUTORS)}, got {kind!r}")
    if workspace.workers == 1:
        return InProcessExecutor(workspace, datasets)
    return WorkerExecutor(workspace)
