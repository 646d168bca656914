"""Filling the catalogs of model families and datasets: built-in modules and plugins.

The built-in families and datasets are the modules of ``models/families/`` and
``data/datasets/``, one file each, imported by ``load_catalog`` the first time a
registry is asked for a name (so adding one needs no list to edit).

A plugin is a module of another package that registers families
(``minarch.models.registry.register``) or datasets (``minarch.data.registry.register``)
when it is imported; the registries load plugins at the same moment, so a plugin
costs nothing until a study needs names. Plugins are

- the entry points of group ``minarch.plugins`` of the installed packages
  (``[project.entry-points."minarch.plugins"] name = "module"``), and
- the modules named in ``$MINARCH_PLUGINS`` (comma-separated), to which
  ``minarch --plugin MODULE`` adds, so worker processes import them too.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Iterable
from importlib.metadata import entry_points

from minarch.errors import MinarchError

GROUP = "minarch.plugins"
ENV = "MINARCH_PLUGINS"

_imported: set[str] = set()  # plugin module names imported, or being imported
_scanned: set[str] = set()  # built-in packages whose modules are imported
_installed: list[tuple[str, str]] | None = None  # (module, where it was named), found once


def load_catalog(package: str) -> None:
    """Import every module of the built-in ``package`` once, then every plugin.

    A built-in module that fails to import fails here, loudly: nothing goes
    missing silently.
    """
    if package not in _scanned:
        _scanned.add(package)  # first: a module that asks its registry does not recurse
        try:
            for module in pkgutil.iter_modules(importlib.import_module(package).__path__):
                importlib.import_module(f"{package}.{module.name}")
        except BaseException:
            _scanned.discard(package)
            raise
    load_plugins()


def load_plugins() -> None:
    """Import every plugin not imported yet; one that fails is a one-line error naming it."""
    for module, named in [*_entry_point_modules(), *_env_modules()]:
        if module in _imported:
            continue
        _imported.add(module)  # first: a plugin that asks the registries does not recurse
        try:
            importlib.import_module(module)
        except Exception as exc:  # any error of a plugin's code is the plugin's
            _imported.discard(module)
            reason = str(exc).splitlines()[0] if str(exc) else ""
            raise MinarchError(
                f"plugin {module} ({named}) failed to import: {type(exc).__name__}: {reason}"
            ) from None


def add_plugins(modules: Iterable[str]) -> None:
    """Name more plugin modules in ``$MINARCH_PLUGINS``, for this process and its children."""
    names = [*_env_names(), *(m for m in modules if m not in _env_names())]
    os.environ[ENV] = ",".join(names)


def _entry_point_modules() -> list[tuple[str, str]]:
    global _installed
    if _installed is None:
        _installed = [
            (point.module, f"entry point {point.name!r} of {GROUP}")
            for point in entry_points(group=GROUP)
        ]
    return _installed


def _env_modules() -> list[tuple[str, str]]:
    return [(name, f"named by --plugin or ${ENV}") for name in _env_names()]


def _env_names() -> list[str]:
    return [name.strip() for name in os.environ.get(ENV, "").split(",") if name.strip()]
