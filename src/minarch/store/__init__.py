"""The run store: studies, runs, their states, curves and artifacts.

``open_store(url)`` is the entry point; everything it returns is a frozen
record or a fresh pandas table, never a live database object.
"""

from minarch.store.base import (
    EPOCH_METRICS,
    RUN_STATES,
    ArtifactRecord,
    EvaluationRecord,
    NewRun,
    RunRecord,
    Store,
    local_owner,
    owner_is_gone,
)
from minarch.store.frames import code_versions
from minarch.store.schema import SCHEMA_VERSION
from minarch.store.sql import SQLStore, default_db_url, open_store

__all__ = [
    "EPOCH_METRICS",
    "RUN_STATES",
    "SCHEMA_VERSION",
    "ArtifactRecord",
    "EvaluationRecord",
    "NewRun",
    "RunRecord",
    "SQLStore",
    "Store",
    "code_versions",
    "default_db_url",
    "local_owner",
    "owner_is_gone",
    "open_store",
]
