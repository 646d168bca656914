"""Apply one compression setting (spec/derive.py) to a trained model and measure the result.

The one place where settings meet the pruning and quantization libraries:
one-shot evaluations and derived runs both come through ``compress``.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from minarch.data import Dataset
from minarch.errors import MinarchError
from minarch.models import (
    build_model,
    count_flops,
    count_parameters,
    cpu_latency_ms,
    serialized_size,
)
from minarch.prune import layer_widths, load_pruned, prune_structured, prune_unstructured, sparsity
from minarch.quant import QuantScheme, cast, convert_int8, quantize
from minarch.spec import RunConfig
from minarch.spec.derive import Setting
from minarch.store import Store
from minarch.train import evaluate

CALIBRATION_BATCH = 256


@dataclass
class Compressed:
    """A compressed model, whether it must run on the CPU, and what was measured about it."""

    model: nn.Module
    metrics: dict[str, Any] = field(default_factory=dict)
    cpu_only: bool = False


def compress(model: nn.Module, setting: Setting, data: Dataset) -> Compressed:
    """The setting applied to a copy of ``model`` (left untouched), with its size measured."""
    input_shape = data.info.input_shape
    if "after" in setting:  # prune first, then quantize: the combined (sparsity, bits) view
        pruned = compress(model, setting["after"], data)
        inner = {k: v for k, v in setting.items() if k != "after"}
        result = compress(pruned.model, inner, data)
        result.metrics["sparsity_measured"] = pruned.metrics["sparsity_measured"]
        return result
    method = setting["method"]
    if method.startswith("structured-"):
        pruned = prune_structured(
            model,
            input_shape,
            flops_remaining=setting["flops_remaining"],
            scope=method.removeprefix("structured-"),
            residual=setting.get("residual", "prune"),
            tolerance=setting.get("tolerance", 0.01),
        )
        metrics = {
            "sparsity": 1 - count_parameters(pruned) / count_parameters(model),
            "flops_remaining": count_flops(pruned, input_shape) / count_flops(model, input_shape),
            "widths": json.dumps(layer_widths(pruned)),
            "base_widths": json.dumps(layer_widths(model)),
        }
        return Compressed(pruned, {**metrics, **_costs(pruned, input_shape)})
    if method.startswith("unstructured-"):
        pruned = prune_unstructured(
            model, sparsity=setting["sparsity"], scope=method.removeprefix("unstructured-")
        )
        return Compressed(pruned, {"sparsity_measured": sparsity(pruned)})
    if method in ("fp16", "bf16"):
        return Compressed(cast(model, method))
    if method == "fp32":
        return Compressed(copy.deepcopy(model), _costs(model, input_shape), cpu_only=True)
    if method == "int8":
        calibration = _calibration(data, setting.get("calibration") or {})
        converted = convert_int8(model.cpu(), input_shape, calibration.cpu())
        return Compressed(converted, _costs(converted, input_shape), cpu_only=True)
    calibration = _calibration(data, setting.get("calibration"))
    return Compressed(quantize(model, scheme_of(setting), calibration=calibration))


def scheme_of(setting: Setting) -> QuantScheme:
    """The simulated-quantization scheme of a 'weights-…' or 'weights+acts-…' setting."""
    part, granularity = setting["method"].rsplit("-", 1)
    calibration = setting.get("calibration") or {}
    return QuantScheme(
        bits=setting["bits"],
        granularity=granularity,
        fold_bn=setting.get("fold_bn", True),
        activations=setting["bits"] if part == "weights+acts" else None,
        **{
            k: v
            for k, v in (
                ("calibration", calibration.get("method")),
                ("percentile", calibration.get("percentile")),
            )
            if v is not None
        },
    )


def measure(compressed: Compressed, data: Dataset) -> dict[str, Any]:
    """Validation loss and accuracy of the compressed model, with its size metrics."""
    model, device = compressed.model, data.val_x.device
    if compressed.cpu_only:
        data = data.to("cpu")
    else:
        model = model.to(device)
    val_loss, val_acc, val_top5 = evaluate(model, data)
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


def _calibration(data: Dataset, calibration: dict[str, Any] | None) -> torch.Tensor | None:
    """The first training batches, normalised: what activation ranges are calibrated on."""
    if calibration is None:
        return None
    count = calibration.get("batches", 4) * CALIBRATION_BATCH
    return data.normalize(data.train_x[:count])


def load_trained(config: RunConfig, store: Store, data: Dataset) -> nn.Module:
    """A finished run's model with its trained weights, checked against the stored SHA-256."""
    weights = [a for a in store.artifacts(config.id) if a.kind == "weights"]
    if not weights:
        raise MinarchError(f"run {config.id} has no stored weights")
    path = Path(weights[-1].path)
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise MinarchError(f"weights of run {config.id}: cannot read {path} ({exc})") from None
    if digest != weights[-1].sha256:
        raise MinarchError(f"weights of run {config.id}: {path} does not match its SHA-256")
    if config.derived is not None:  # saved with its architecture (it may be pruned)
        return load_pruned(path)
    info = data.info
    model = build_model(
        config.model.family, config.model.config, info.input_shape, info.num_classes
    )
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model
