"""minarch: the smallest network that reliably learns an image-classification task.

The Python API mirrors the CLI: ``load_study``, ``plan``, ``run``, ``status``,
``runs``, ``epochs``, ``report``, ``remove`` and ``datasets``, among others.
They are loaded on first use, so ``minarch --help`` does not pay for importing
torch.
"""

from typing import Any

from minarch.errors import MinarchError

try:  # written at install by setuptools-scm: a release, or the git revision installed from
    from minarch._version import __version__
except ImportError:  # a source tree used without installing it
    __version__ = "0+unknown"

_API = (
    "analyze",
    "compression",
    "datasets",
    "epochs",
    "estimate_time",
    "families",
    "has_study",
    "load_study",
    "plan",
    "remove",
    "report",
    "run",
    "runs",
    "status",
    "table",
)

__all__ = ["MinarchError", "__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        from minarch import api

        return getattr(api, name)
    raise AttributeError(f"module 'minarch' has no attribute {name!r}")
