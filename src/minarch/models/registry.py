"""The one entry point to model families: register, look up, build, describe.

Each family module registers its name, frozen config class, builder, label
function and a small example here at import time, and ``discover`` imports
every module of the package, so a new family is one new file; everything else
in minarch reaches models through the functions below, never through a family
module directly.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType

import torch
from pydantic import BaseModel
from torch import nn

from minarch.errors import ModelError
from minarch.models.init import initialise
from minarch.plugins import load_plugins

Builder = Callable[[BaseModel, tuple[int, ...], int], nn.Module]
Labeller = Callable[[BaseModel], str]
# A config field's json_schema_extra that marks it as a size, which a study's
# ``extend: true`` halves and doubles (spec/sizes.py): always (width, channels,
# dim), or only where a study sweeps it (depth).
SIZE = {"size": "always"}
SIZE_WHEN_SWEPT = {"size": "swept"}


@dataclass(frozen=True)
class Example:
    """A small configuration and an input it fits: what the contract, fused-engine,
    pruning and quantization tests build every family with. It should be cheap to
    train yet wide enough that structured pruning reaches 80 % and 50 % of its FLOPs."""

    config: BaseModel
    input_shape: tuple[int, ...]


@dataclass(frozen=True)
class Family:
    """One architecture family: its config schema, how to build it, how to name it."""

    name: str
    config: type[BaseModel]
    build: Builder
    describe: Labeller
    example: Example


_FAMILIES: dict[str, Family] = {}


def register(
    name: str, config: type[BaseModel], build: Builder, describe: Labeller, *, example: Example
) -> None:
    """Add a family; a second family under the same name is an error, not an override."""
    if name in _FAMILIES:
        raise ModelError(f"model family {name!r} is already registered")
    if not isinstance(example.config, config):
        raise ModelError(f"model family {name!r}: its example is not a {config.__name__}")
    _FAMILIES[name] = Family(name, config, build, describe, example)


def discover(package: ModuleType) -> None:
    """Import every module of ``package``, so each family module registers itself.

    A module that fails to import fails here, loudly: no family goes missing
    silently, and adding one needs no list to edit.
    """
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")


def family_names() -> list[str]:
    load_plugins()
    return sorted(_FAMILIES)


def _family(name: str) -> Family:
    load_plugins()  # a plugin's family is looked up like any other (minarch.plugins)
    try:
        return _FAMILIES[name]
    except KeyError:
        valid = ", ".join(family_names())
        raise ModelError(f"unknown model family {name!r}; valid families: {valid}") from None


def config_class(family: str) -> type[BaseModel]:
    return _family(family).config


def example(family: str) -> Example:
    """The family's small example configuration and input shape (for tests over every family)."""
    return _family(family).example


def _resolve(family: Family, config: BaseModel | Mapping) -> BaseModel:
    """Accept a config object or a plain mapping (as read from a study file)."""
    if isinstance(config, family.config):
        return config
    if isinstance(config, BaseModel):
        raise ModelError(
            f"{family.name}: expected a {family.config.__name__}, got {type(config).__name__}"
        )
    return family.config.model_validate(dict(config))


def build_model(
    family: str,
    config: BaseModel | Mapping,
    input_shape: tuple[int, ...],
    num_classes: int,
    *,
    generator: torch.Generator | None = None,
) -> nn.Module:
    """Build and initialise a model; the same generator seed gives bit-identical weights.

    Modules are created on the meta device and every parameter and buffer is
    then written by ``initialise``, so the global RNG is neither read nor
    advanced when a generator is given.
    """
    fam = _family(family)
    cfg = _resolve(fam, config)
    shape = tuple(input_shape)
    if not shape or not all(isinstance(s, int) and s > 0 for s in shape):
        raise ModelError(f"{family}: input shape must be positive integers, got {shape}")
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ModelError(f"{family}: num_classes must be a positive integer, got {num_classes}")
    with torch.device("meta"):
        model = fam.build(cfg, shape, num_classes)
    model.to_empty(device="cpu")
    initialise(model, generator)
    return model


def describe(family: str, config: BaseModel | Mapping) -> str:
    """A short label for reports, e.g. ``mlp d2 w16``."""
    fam = _family(family)
    return fam.describe(_resolve(fam, config))
