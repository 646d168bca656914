"""The ViT's attention under the batched engine's vmap, one CPU thread: prints one JSON object.

python benchmarks/bench_attention.py

The ViT calls ``scaled_dot_product_attention``, whose CPU kernel has no vmap
batching rule: vmap runs it member by member (and warns). The alternative is
attention written out (``q @ kᵀ``, softmax, ``@ v``), whose ops have batching
rules. Each row times forward and backward of both, alone and vmapped over a
fleet of 3, at the ladder's ViT sizes (batch 128, 2 heads; 5 tokens for
digits, 11 for MNIST-1D, 50 for 28 × 28 images, 65 for 32 × 32), best of 3
rounds of 30 calls.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings

import torch
import torch.nn.functional as F
from torch.func import vmap

FLEET = 3
BATCH, HEADS = 128, 2
REPEATS, ROUNDS = 30, 3


def kernel(q, k, v):
    return F.scaled_dot_product_attention(q, k, v)


def written_out(q, k, v):
    weights = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(q.shape[-1]))
    return weights.softmax(-1) @ v


def milliseconds(attention, shape: tuple[int, ...], fleet: bool) -> float:
    """Best mean time of one forward and backward over ``ROUNDS`` rounds."""
    generator = torch.Generator().manual_seed(0)
    full = (FLEET, *shape) if fleet else shape
    q, k, v = (torch.randn(full, generator=generator, requires_grad=True) for _ in range(3))
    call = vmap(attention) if fleet else attention
    for _ in range(3):
        call(q, k, v).sum().backward()
    best = math.inf
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(REPEATS):
            call(q, k, v).sum().backward()
        best = min(best, (time.perf_counter() - start) / REPEATS)
    return round(best * 1e3, 3)


def main() -> None:
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")  # vmap's fallback warning is what is measured here
    rows = []
    for dim in (4, 16, 64):
        for tokens in (5, 11, 50, 65):
            shape = (BATCH, HEADS, tokens, dim // HEADS)
            row = {"dim": dim, "tokens": tokens}
            for fleet in (False, True):
                for name, attention in (("kernel", kernel), ("written_out", written_out)):
                    key = f"{'fleet' if fleet else 'alone'}_{name}_ms"
                    row[key] = milliseconds(attention, shape, fleet)
            rows.append(row)
    q, k, v = (
        torch.randn(8, HEADS, 17, 8, generator=torch.Generator().manual_seed(i)) for i in range(3)
    )
    print(
        json.dumps(
            {
                "load_average": [round(x, 2) for x in os.getloadavg()],
                "max_abs_difference": float((kernel(q, k, v) - written_out(q, k, v)).abs().max()),
                "rows": rows,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
