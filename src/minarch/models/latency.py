"""What a compressed model costs to ship and run: file size and CPU inference latency."""

from __future__ import annotations

import io
import statistics
import time

import torch
from torch import nn


def serialized_size(model: nn.Module) -> int:
    """Bytes of the model's state dict as ``torch.save`` writes it."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


def cpu_latency_ms(
    model: nn.Module,
    input_shape: tuple[int, ...],
    *,
    batch_size: int = 1,
    warmup: int = 5,
    repeats: int = 30,
    dtype: torch.dtype = torch.float32,
) -> float:
    """Median wall time of one eval-mode forward pass on the CPU, in milliseconds.

    The median over ``repeats`` timed calls (after ``warmup`` untimed ones)
    resists the outliers of a shared machine; the model is left on its device
    and in its training mode.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    was_training = model.training
    cpu_model = model.to("cpu").eval()
    inputs = torch.randn((batch_size, *input_shape), dtype=dtype)
    times = []
    try:
        with torch.inference_mode():
            for i in range(warmup + repeats):
                start = time.perf_counter()
                cpu_model(inputs)
                if i >= warmup:
                    times.append(time.perf_counter() - start)
    finally:
        model.to(device).train(was_training)
    return 1000 * statistics.median(times)
