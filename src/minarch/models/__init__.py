"""Model families, built and counted through one registry.

The catalog (``registry.py``, the family schemas in ``families/``) imports no
torch; building, counting and timing models do, and are imported on first use.
Other packages use only the names re-exported here.
"""

from minarch.lazy import on_first_use
from minarch.models.analytic import Counts
from minarch.models.registry import (
    Example,
    analytic_counts,
    config_class,
    describe,
    example,
    family_names,
    summary,
)

__getattr__ = on_first_use(
    __name__,
    {
        "build_model": "build",
        "count_flops": "counting",
        "count_parameters": "counting",
        "cpu_latency_ms": "latency",
        "serialized_size": "latency",
    },
)

__all__ = [
    "Counts",
    "Example",
    "analytic_counts",
    "build_model",
    "config_class",
    "count_flops",
    "count_parameters",
    "cpu_latency_ms",
    "describe",
    "example",
    "family_names",
    "serialized_size",
    "summary",
]
