"""Store a pruned model as weights plus layer widths, never as a pickled module.

Loading builds a fresh model of the same family and config, then resizes each
pruned layer to its stored widths and parameter shapes (and each ViT
attention module to its stored head count) before loading the state dict, so
``torch.load(weights_only=True)`` suffices.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel
from torch import nn

from minarch.errors import MinarchError, PruneError
from minarch.models import build_model

FORMAT = 1
# The width attributes Torch-Pruning rewrites when it removes channels, and a
# ViT attention module's head count, which head pruning rewrites.
_WIDTHS = (
    "heads",
    "in_channels",
    "out_channels",
    "groups",
    "in_features",
    "out_features",
    "num_features",
    "normalized_shape",
)


def architecture(model: nn.Module) -> dict[str, dict[str, int | list[int]]]:
    """Width attributes of every module that has any, keyed by module name."""
    description = {}
    for name, module in model.named_modules():
        widths = {}
        for attribute in _WIDTHS:
            value = getattr(module, attribute, None)
            if isinstance(value, int):
                widths[attribute] = value
            elif isinstance(value, tuple) and all(isinstance(v, int) for v in value):
                widths[attribute] = list(value)
        if widths:
            description[name] = widths
    return description


def save_pruned(
    model: nn.Module,
    path: str | Path,
    *,
    family: str,
    config: BaseModel | Mapping,
    input_shape: tuple[int, ...],
    num_classes: int,
) -> None:
    """Write what ``load_pruned`` needs to rebuild ``model``: its origin, widths and weights."""
    config = config.model_dump() if isinstance(config, BaseModel) else dict(config)
    torch.save(
        {
            "format": FORMAT,
            "family": family,
            "config": config,
            "input_shape": list(input_shape),
            "num_classes": num_classes,
            "architecture": architecture(model),
            "state_dict": model.state_dict(),
        },
        Path(path),
    )


def read_weights(path: str | Path) -> Any:
    """What ``torch.load(weights_only=True)`` reads from ``path``, onto the CPU.

    A file it refuses was not written by minarch (and was replaced, since its
    SHA-256 was checked): say so in one line, never suggest loading it unsafely.
    """
    try:
        with warnings.catch_warnings():  # a foreign pickle protocol warns before it fails
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(Path(path), map_location="cpu", weights_only=True)
    except OSError:
        raise
    except Exception:  # UnpicklingError, EOFError, KeyError, RuntimeError: whatever it was
        raise MinarchError(f"{path}: not a minarch weights file") from None


def load_pruned(path: str | Path) -> nn.Module:
    """Rebuild a model written by ``save_pruned``; it is in eval mode on the CPU."""
    saved = read_weights(path)
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        raise PruneError(f"{path}: not a pruned-model file of format {FORMAT}")
    model = build_model(
        saved["family"], saved["config"], tuple(saved["input_shape"]), saved["num_classes"]
    )
    modules = dict(model.named_modules())
    for name, widths in saved["architecture"].items():
        if name not in modules:
            raise PruneError(f"{path}: layer {name!r} does not exist in a {saved['family']} model")
        for attribute, value in widths.items():
            setattr(modules[name], attribute, tuple(value) if isinstance(value, list) else value)
    _resize(model, saved["state_dict"])
    model.load_state_dict(saved["state_dict"])
    return model.eval()


def _resize(model: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """Give every parameter and buffer the stored shape so the state dict fits."""
    for name, module in model.named_modules():
        prefix = f"{name}." if name else ""
        for key, parameter in list(module.named_parameters(recurse=False)):
            stored = state.get(prefix + key)
            if stored is not None and stored.shape != parameter.shape:
                setattr(module, key, nn.Parameter(torch.empty_like(stored)))
        for key, buffer in list(module.named_buffers(recurse=False)):
            stored = state.get(prefix + key)
            if stored is not None and buffer is not None and stored.shape != buffer.shape:
                setattr(module, key, torch.empty_like(stored))
