"""Pruners and structured-pruning criteria, by name.

``PRUNERS`` says how a pruning setting (spec/settings.py) is applied, under
the setting's ``pruner`` name; ``CRITERIA`` says how structured pruning ranks
channels and heads, under the name a study's ``criterion`` gives. A criterion
is one file in ``prune/criteria/`` that registers itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch_pruning as tp
from torch import nn

from minarch.errors import PruneError
from minarch.registry import Registry
from minarch.spec.settings import PruneSetting


@dataclass(frozen=True)
class Pruner:
    """``apply(model, setting, input_shape)``: a pruned copy, the model left untouched."""

    apply: Callable[[nn.Module, PruneSetting, tuple[int, ...]], nn.Module]
    resizes: bool  # removes whole units (a smaller dense model), or zeroes weights in place


@dataclass(frozen=True)
class Criterion:
    """Scores by which structured pruning removes the weakest units first.

    ``channels`` scores each channel of a Torch-Pruning group, or returns None
    where it cannot (bn-scale on a group without batch norm); ``heads`` scores
    each head of an attention block (prune/attention.py), or is None if the
    criterion cannot rank heads. Scores are compared across groups, unnormalised.
    """

    name: str
    channels: Callable[[tp.Group], torch.Tensor | None]
    heads: Callable[[nn.Module], torch.Tensor] | None


PRUNERS: Registry[Pruner] = Registry("pruner", PruneError)
CRITERIA: Registry[Criterion] = Registry("structured pruning criterion", PruneError)
