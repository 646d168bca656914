"""The catalog of model families: register, look up, describe; no torch.

Each family registers its name, frozen config class, label function, a small
example and its builder here. Built-in families are the modules of
``models/families/`` (one file each, found by ``load_catalog``); their builders
live in the ``nn.Module`` modules of this package and are named as
``"module:function"``, so they, and torch, are imported only when a model is
built (``models/build.py``). A plugin may pass the builder function itself.
A family may also register a ``count``: its sizes by arithmetic
(``models/analytic.py``), so a study is planned without building its models.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel

from minarch.errors import ModelError
from minarch.lazy import resolve
from minarch.models.analytic import Counts
from minarch.plugins import load_catalog

if TYPE_CHECKING:
    from torch import nn

Builder = Callable[[BaseModel, tuple[int, ...], int], "nn.Module"]
Counter = Callable[[BaseModel, tuple[int, ...], int], Counts]
Labeller = Callable[[BaseModel], str]
# A config field's json_schema_extra that marks it as a size, which a study's
# ``extend: true`` halves and doubles (spec/sizes.py): always (width, channels,
# dim), or only where a study sweeps it (depth).
SIZE = {"size": "always"}
SIZE_WHEN_SWEPT = {"size": "swept"}

BUILT_IN = "minarch.models.families"


@dataclass(frozen=True)
class Example:
    """A small configuration and an input it fits: what the contract, fused-engine,
    pruning and quantization tests build every family with. It should be cheap to
    train yet wide enough that structured pruning reaches 80 % and 50 % of its FLOPs."""

    config: BaseModel
    input_shape: tuple[int, ...]


@dataclass(frozen=True)
class Family:
    """One architecture family: its config schema, how to build it, how to name it.

    ``build`` is the builder or its ``"module:function"`` path, imported on first use;
    ``count`` its model's counts by arithmetic, or None: then the model is built to count it.
    """

    name: str
    config: type[BaseModel]
    build: Builder | str
    describe: Labeller
    example: Example
    count: Counter | None = None

    def builder(self) -> Builder:
        return self.build if callable(self.build) else resolve(self.build)


_FAMILIES: dict[str, Family] = {}


def register(
    name: str,
    config: type[BaseModel],
    build: Builder | str,
    describe: Labeller,
    *,
    example: Example,
    count: Counter | None = None,
) -> None:
    """Add a family; a second family under the same name is an error, not an override."""
    if name in _FAMILIES:
        raise ModelError(f"model family {name!r} is already registered")
    if not isinstance(example.config, config):
        raise ModelError(f"model family {name!r}: its example is not a {config.__name__}")
    _FAMILIES[name] = Family(name, config, build, describe, example, count)


def family_names() -> list[str]:
    load_catalog(BUILT_IN)
    return sorted(_FAMILIES)


def family(name: str) -> Family:
    load_catalog(BUILT_IN)  # built-in and plugin families are looked up alike
    try:
        return _FAMILIES[name]
    except KeyError:
        valid = ", ".join(family_names())
        raise ModelError(f"unknown model family {name!r}; valid families: {valid}") from None


def config_class(name: str) -> type[BaseModel]:
    return family(name).config


def summary(name: str) -> str:
    """What the architecture is, in one line: the first line of its builder module's docstring.

    A built-in builder's module is read, not imported, so listing families imports no torch.
    """
    build = family(name).build
    if callable(build):
        doc = sys.modules[build.__module__].__doc__
    else:
        spec = importlib.util.find_spec(build.partition(":")[0])
        doc = ast.get_docstring(ast.parse(Path(spec.origin).read_text())) if spec else None
    lines = (doc or "").strip().splitlines()
    return lines[0] if lines else ""


def example(name: str) -> Example:
    """The family's small example configuration and input shape (for tests over every family)."""
    return family(name).example


def resolve_config(fam: Family, config: BaseModel | Mapping) -> BaseModel:
    """Accept a config object or a plain mapping (as read from a study file)."""
    if isinstance(config, fam.config):
        return config
    if isinstance(config, BaseModel):
        raise ModelError(
            f"{fam.name}: expected a {fam.config.__name__}, got {type(config).__name__}"
        )
    return fam.config.model_validate(dict(config))


def analytic_counts(
    name: str, config: BaseModel | Mapping, input_shape: tuple[int, ...], num_classes: int
) -> Counts | None:
    """The model's counts by arithmetic, without torch; None when its family has no ``count``."""
    fam = family(name)
    if fam.count is None:
        return None
    return fam.count(resolve_config(fam, config), tuple(input_shape), num_classes)


def describe(name: str, config: BaseModel | Mapping) -> str:
    """A short label for reports, e.g. ``mlp d2 w16``."""
    fam = family(name)
    return fam.describe(resolve_config(fam, config))
