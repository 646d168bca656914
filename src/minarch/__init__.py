"""minarch: the smallest network that reliably learns an image-classification task.

The Python API mirrors the CLI: ``load_study``, ``plan``, ``run``, ``status``,
``runs``, ``epochs``, ``report`` and ``datasets``.
"""

__version__ = "0.1.0"

from minarch.api import datasets, epochs, load_study, plan, report, run, runs, status  # noqa: E402
from minarch.errors import MinarchError  # noqa: E402

__all__ = [
    "MinarchError",
    "__version__",
    "datasets",
    "epochs",
    "load_study",
    "plan",
    "report",
    "run",
    "runs",
    "status",
]
