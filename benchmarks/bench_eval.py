"""Validation-batch benchmark: prints one JSON list, a dict per (workload, batch size).

python benchmarks/bench_eval.py                   # cnn and mlp, batches 1024 256 128
python benchmarks/bench_eval.py cnn --batches 1024 512 256 64
python benchmarks/bench_eval.py cnn --batches 256 --threads 1   # the layouts, as workers run

Times ``minarch.train.evaluate`` over a 10,000-image validation split of MNIST's
shape, the work every epoch and every evaluation of a compression study does.
The baseline is the batch size minarch used on every device before (1024); it
now uses 256 on a CPU. Each batch size is
timed in turn, round after round, in the same process, so a busy machine slows
all alike: report the ratios. ``minor_faults`` counts the page faults of one
pass: activations above glibc's mmap threshold (32 MiB at most) are mapped and
unmapped on every batch, and their pages faulted in again, which shows as
system time. A convolutional workload is also timed channels-last (the layout
training and one-shot evaluations use on a CPU): ``channels_last_speedup`` is
its contiguous time over its channels-last time at the same batch size.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import time

import torch

from minarch.data import dataset_info
from minarch.data.dataset import build_dataset
from minarch.models import build_model
from minarch.train import evaluate

WORKLOADS = {
    "cnn": ("cnn", {"depth": 3, "channels": 24}),
    "mlp": ("mlp", {"depth": 2, "width": 256}),
}
BASELINE = 1024


def _split(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=generator)
    return x, torch.randint(0, 10, (n,), generator=generator)


def _one_pass(
    model: torch.nn.Module, data, batch: int, layout: torch.memory_format
) -> tuple[float, int]:
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.perf_counter()
    evaluate(model.to(memory_format=layout), data, batch_size=batch, layout=layout)
    seconds = time.perf_counter() - start
    return seconds, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults


def run(name: str, batches: list[int], rounds: int) -> list[dict]:
    family, config = WORKLOADS[name]
    data = build_dataset(dataset_info("mnist"), *_split(1000, 0), *_split(10_000, 1))
    model = build_model(family, config, (1, 28, 28), 10)
    layouts = [torch.contiguous_format]
    if any(isinstance(m, torch.nn.Conv2d) for m in model.modules()):
        layouts.append(torch.channels_last)
    cases = [(batch, layout) for batch in batches for layout in layouts]
    times: dict[tuple, list[float]] = {case: [] for case in cases}
    faults: dict[tuple, int] = {}
    for case in cases:  # warm-up
        _one_pass(model, data, *case)
    for _ in range(rounds):
        for case in cases:
            seconds, faults[case] = _one_pass(model, data, *case)
            times[case].append(seconds)
    median = {case: statistics.median(t) for case, t in times.items()}
    base = median.get((BASELINE, torch.contiguous_format))
    return [
        {
            "workload": name,
            "batch": batch,
            "seconds": round(median[(batch, torch.contiguous_format)], 4),
            "speedup_vs_1024": (
                round(base / median[(batch, torch.contiguous_format)], 2) if base else None
            ),
            "minor_faults": faults[(batch, torch.contiguous_format)],
            "channels_last_speedup": (
                round(median[(batch, torch.contiguous_format)] / median[(batch, layouts[-1])], 2)
                if len(layouts) > 1
                else None
            ),
        }
        for batch in batches
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workloads", nargs="*", help=f"{', '.join(WORKLOADS)} (default: all)")
    parser.add_argument("--batches", type=int, nargs="+", default=[BASELINE, 256, 128])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    unknown = sorted(set(args.workloads) - set(WORKLOADS))
    if unknown:
        parser.error(f"unknown workloads {unknown}; valid: {', '.join(WORKLOADS)}")
    torch.set_num_threads(args.threads)
    names = args.workloads or list(WORKLOADS)
    results = [row for name in names for row in run(name, args.batches, args.rounds)]
    meta = {"torch": torch.__version__, "threads": args.threads, "machine": platform.machine()}
    print(json.dumps([meta, *results], indent=1))


if __name__ == "__main__":
    main()
