"""Structured-pruning criteria: each module here registers one in ``CRITERIA`` on import."""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
