"""Apply one compression setting (spec/settings.py) to a trained model and measure the result.

The one place where settings meet the pruning and quantization libraries:
one-shot evaluations and derived runs both come through ``compress``, which
applies a setting through ``PRUNERS`` or ``QUANTIZERS`` under its name.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from minarch.data import Dataset
from minarch.errors import WeightsError
from minarch.models import (
    build_model,
    count_flops,
    count_parameters,
    cpu_latency_ms,
    serialized_size,
)
from minarch.prune import PRUNERS, layer_widths, load_pruned, read_weights, sparsity
from minarch.quant import QUANTIZERS
from minarch.spec import RunConfig
from minarch.spec.settings import PrunedThenQuantized, Setting
from minarch.store import Store
from minarch.train import evaluate, memory_format


@dataclass
class Compressed:
    """A compressed model, whether it must run on the CPU, and what was measured about it."""

    model: nn.Module
    metrics: dict[str, Any] = field(default_factory=dict)
    cpu_only: bool = False


def compress(model: nn.Module, setting: Setting, data: Dataset) -> Compressed:
    """The setting applied to a copy of ``model`` (left untouched), with its size measured."""
    input_shape = data.info.input_shape
    if isinstance(setting, PrunedThenQuantized):  # the combined (sparsity, bits) view
        pruned = compress(model, setting.pruning, data)
        result = compress(pruned.model, setting.quantization, data)
        result.metrics["sparsity_measured"] = pruned.metrics["sparsity_measured"]
        return result
    if setting.kind == "prune":
        pruner = PRUNERS[setting.pruner]
        pruned = pruner.apply(model, setting, input_shape)
        if not pruner.resizes:
            return Compressed(pruned, {"sparsity_measured": sparsity(pruned)})
        metrics = {
            "sparsity": 1 - count_parameters(pruned) / count_parameters(model),
            "flops_remaining": count_flops(pruned, input_shape) / count_flops(model, input_shape),
            "widths": json.dumps(layer_widths(pruned)),
            "base_widths": json.dumps(layer_widths(model)),
        }
        return Compressed(pruned, {**metrics, **_costs(pruned, input_shape)})
    quantizer = QUANTIZERS[setting.quantizer]
    quantized = quantizer.apply(
        model, setting, input_shape, lambda count: data.normalize(data.train_x[:count])
    )
    if quantizer.deployed:
        return Compressed(quantized, _costs(quantized, input_shape), cpu_only=True)
    return Compressed(quantized)


def measure(compressed: Compressed, data: Dataset) -> dict[str, Any]:
    """Validation loss and accuracy of the compressed model, with its size metrics.

    Evaluated in the layout its architecture trains in on the device (channels-last
    convolutions on a CPU, about twice as fast there), a deployed model as it is.
    """
    model, device = compressed.model, data.val_x.device
    if compressed.cpu_only:
        data, layout = data.to("cpu"), torch.contiguous_format
    else:
        layout = memory_format(model, device)
        model = model.to(device).to(memory_format=layout)
    val_loss, val_acc, val_top5 = evaluate(model, data, layout=layout)
    return {"val_loss": val_loss, "val_acc": val_acc, "val_top5": val_top5, **compressed.metrics}


def _costs(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, Any]:
    """What a deployed model costs: its parameters, FLOPs, file size and CPU latency."""
    costs: dict[str, Any] = {
        "size_bytes": serialized_size(model),
        "latency_ms": cpu_latency_ms(model, input_shape),
    }
    try:  # an int8 graph has no trainable parameters to count
        costs["params_after"] = count_parameters(model)
        costs["flops_after"] = count_flops(model, input_shape)
    except (RuntimeError, StopIteration, TypeError):
        pass
    return costs


def load_trained(config: RunConfig, store: Store, data: Dataset) -> nn.Module:
    """A finished run's model with its trained weights, checked against the stored SHA-256."""
    weights = [a for a in store.artifacts(config.id) if a.kind == "weights"]
    if not weights:
        raise _weights_error(config, "the store has no weights file for it")
    path = Path(weights[-1].path)
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise _weights_error(config, f"cannot read {path} ({exc.strerror or exc})") from None
    if digest != weights[-1].sha256:
        raise _weights_error(config, f"{path} does not match its SHA-256 (changed or replaced)")
    if config.derived is not None:  # saved with its architecture (it may be pruned)
        return load_pruned(path)
    state = read_weights(path)
    info = data.info
    model = build_model(
        config.model.family, config.model.config, info.input_shape, info.num_classes
    )
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError):
        raise _weights_error(config, f"{path} holds another model") from None
    return model


def _weights_error(config: RunConfig, problem: str) -> WeightsError:
    """What is wrong with a run's weights, and how to train it again."""
    return WeightsError(
        f"weights of run {config.id}: {problem}; train it again: `minarch rm --study STUDY "
        f"--run {config.id}` (which also deletes its derived runs), then `minarch run`"
    )
