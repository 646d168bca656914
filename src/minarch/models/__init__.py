"""Model families, built and counted through one registry.

Importing this package registers every family; other packages use only the
functions re-exported here.
"""

from minarch.models import cnn, mlp, mobilenetv2_cifar, resnet50, resnet_cifar, vit  # noqa: F401
from minarch.models.counting import count_flops, count_parameters
from minarch.models.latency import cpu_latency_ms, serialized_size
from minarch.models.registry import (
    build_model,
    config_class,
    describe,
    family_names,
)

__all__ = [
    "build_model",
    "config_class",
    "count_flops",
    "count_parameters",
    "cpu_latency_ms",
    "describe",
    "family_names",
    "serialized_size",
]
