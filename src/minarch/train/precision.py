"""A pack's float arithmetic: the recipe's precision and the run's determinism request.

Torch keeps these as process-wide switches; ``numerics`` sets them for one
pack and puts them back, so a worker's next pack starts from its own settings.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

# cuBLAS is deterministic only with a fixed workspace (read when CUDA starts).
CUBLAS_WORKSPACE = ":4096:8"


@contextlib.contextmanager
def numerics(precision: str, deterministic: bool) -> Iterator[None]:
    """Set TF32, cuDNN autotuning and deterministic algorithms for one pack.

    fp32 is true float32: TF32 off for matmuls and convolutions (cuDNN's own
    default would use it for convolutions). cuDNN autotunes its algorithms
    (``benchmark``) since a pack's shapes are fixed, unless ``deterministic``:
    then deterministic algorithms are requested, and an op that has none warns.
    """
    cuda, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    saved = (
        cuda.allow_tf32,
        cudnn.allow_tf32,
        cudnn.benchmark,
        cudnn.deterministic,
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    tf32 = precision == "tf32"
    cuda.allow_tf32 = cudnn.allow_tf32 = tf32
    cudnn.benchmark = not deterministic
    cudnn.deterministic = deterministic
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        cuda.allow_tf32, cudnn.allow_tf32, cudnn.benchmark, cudnn.deterministic = saved[:4]
        torch.use_deterministic_algorithms(saved[4], warn_only=saved[5])


def cpu_has_bf16_units() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AMX or AVX-512 BF16), as oneDNN sees it."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def slow_precision(precision: str, device: torch.device) -> str | None:
    """Why ``precision`` trains slower than fp32 on ``device``, or None.

    bf16 autocast pays on GPUs and on CPUs with bf16 matrix units (AMX or
    AVX-512 BF16); elsewhere oneDNN emulates it, slower than float32.
    """
    if precision != "bf16" or device.type != "cpu":
        return None
    if cpu_has_bf16_units():
        return None
    return (
        "training.precision bf16: this CPU has no bf16 matrix units (AMX or AVX-512 BF16), "
        "so bf16 autocast trains slower than fp32 here"
    )


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The context a training forward and loss run in: bfloat16 autocast for bf16."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
