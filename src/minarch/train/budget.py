"""What a pack's members hold in memory, and the share of a device they may plan for.

Torch-free, so ``minarch plan`` checks a study's memory (``execute/memory.py``)
by the same terms the engine plans its fleets by (``engine.memory_plan``),
without loading torch.
"""

from __future__ import annotations

import os

# Fraction of the device's memory (of the process's share of it) a fleet may
# plan to use; the rest is headroom for the allocator, the data and (on a
# shared CPU machine) everyone else.
CUDA_MEMORY_FRACTION = 0.8
CPU_MEMORY_FRACTION = 0.25
# Per parameter: the weight, its gradient, up to two optimizer states, and the
# copies of the weight and states that an accelerator's windowed divergence
# check rewinds to (a CPU checks every step and takes none: headroom there).
TENSORS_PER_PARAMETER = 7
# Per activation: the forward value kept for backward and its gradient.
TENSORS_PER_ACTIVATION = 2


def physical_memory() -> int:
    """The machine's memory in bytes."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def cpu_budget(share: float = 1.0) -> float:
    """Bytes a fleet may plan for on a CPU, holding ``share`` of it (``engine.memory_budget``)."""
    return CPU_MEMORY_FRACTION * share * physical_memory()
