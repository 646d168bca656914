"""Model families, built and counted through one registry.

Importing this package imports every module in it, and each family module
registers itself (``registry.discover``), so a new family is one new file;
other packages use only the functions re-exported here.
"""

import sys

from minarch.models.counting import count_flops, count_parameters
from minarch.models.latency import cpu_latency_ms, serialized_size
from minarch.models.registry import (
    Example,
    build_model,
    config_class,
    describe,
    discover,
    example,
    family_names,
    summary,
)

discover(sys.modules[__name__])

__all__ = [
    "Example",
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
