"""Structured-pruning benchmark: prints one JSON dict.

Prunes ResNet-56 (CIFAR-10 shape) to a fraction of its FLOPs with each scope
and residual policy; reports the time pruning took, parameters and FLOPs
before and after, and median CPU inference latency at batch 1 and 64.

OMP_NUM_THREADS=1 python benchmarks/bench_prune.py
python benchmarks/bench_prune.py --flops-remaining 0.6 --residual keep
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from minarch.models import build_model, count_flops, count_parameters
from minarch.models.latency import cpu_latency_ms
from minarch.prune import prune_structured

SHAPE = (3, 32, 32)
BATCHES = (1, 64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=56, help="resnet_cifar depth (6n+2)")
    parser.add_argument("--flops-remaining", type=float, default=0.4)
    parser.add_argument("--scope", nargs="+", default=["global", "uniform"])
    parser.add_argument("--residual", nargs="+", default=["prune", "keep"])
    args = parser.parse_args()
    model = build_model(
        "resnet_cifar", {"depth": args.depth}, SHAPE, 10, generator=torch.Generator().manual_seed(0)
    ).eval()
    before = _costs(model)
    results = []
    for scope in args.scope:
        for residual in args.residual:
            start = time.perf_counter()
            pruned = prune_structured(
                model,
                SHAPE,
                flops_remaining=args.flops_remaining,
                scope=scope,
                residual=residual,
            )
            seconds = time.perf_counter() - start
            after = _costs(pruned)
            results.append(
                {
                    "scope": scope,
                    "residual": residual,
                    "prune_seconds": round(seconds, 2),
                    "after": after,
                    "flops_fraction": round(after["flops"] / before["flops"], 4),
                    "params_fraction": round(after["params"] / before["params"], 4),
                    "latency_ratio": {
                        key: round(after[key] / before[key], 3) for key in after if "latency" in key
                    },
                }
            )
    report = {
        "model": f"resnet_cifar depth {args.depth}, 10 classes, input {list(SHAPE)}",
        "flops_remaining": args.flops_remaining,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "before": before,
        "results": results,
    }
    print(json.dumps(report, indent=2))


def _costs(model: torch.nn.Module) -> dict[str, float]:
    costs: dict[str, float] = {
        "params": count_parameters(model),
        "flops": count_flops(model, SHAPE),
    }
    for batch in BATCHES:
        costs[f"latency_ms_batch{batch}"] = round(cpu_latency_ms(model, SHAPE, batch_size=batch), 3)
    return costs


if __name__ == "__main__":
    main()
