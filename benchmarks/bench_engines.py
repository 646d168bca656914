"""Plain against batched (or contiguous against channels-last) on ladder-shaped packs, one
CPU thread: the data behind the "auto" engine rule and the layout rule.

Each workload is one model of the ladder (studies/minimal-architectures-cpu.yaml)
trained as a pack of 3 seeds on random images of its dataset's shape. The two
variants alternate, ROUNDS times, so a drift in the machine's speed hits both;
each row gives the median of the per-round ratios second / first, the model's
forward FLOPs per sample, and the load average. Prints one JSON object per line.

python benchmarks/bench_engines.py              # every workload, batched against plain
python benchmarks/bench_engines.py digits-cnn-c4 mnist-cnn-c16
python benchmarks/bench_engines.py --compare layout mnist-cnn-c2 cifar-cnn-c16
python benchmarks/bench_engines.py --compare fused --seeds 2 digits-mlp-w16
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from unittest import mock

import torch

from minarch.data import DatasetInfo
from minarch.data.dataset import build_dataset
from minarch.models import build_model, count_flops
from minarch.train import Member, Recipe, train_pack
from minarch.train import plain as plain_engine

SHAPES = {"digits": (1, 8, 8), "mnist1d": (1, 40), "mnist": (1, 28, 28), "cifar": (3, 32, 32)}
WORKLOADS = {
    **{
        f"digits-cnn-c{c}": ("digits", "cnn", {"depth": 2, "channels": c})
        for c in (1, 4, 8, 16, 32)
    },
    **{
        f"mnist1d-cnn-c{c}": ("mnist1d", "cnn", {"depth": 2, "channels": c})
        for c in (2, 4, 8, 16, 32)
    },
    **{
        f"{name}-cnn-c{c}": (name, "cnn", {"depth": 2, "channels": c})
        for name in ("mnist", "cifar")
        for c in (1, 2, 3, 4, 8, 16, 32)
    },
    **{
        f"{name}-mlp-w{w}": (name, "mlp", {"depth": 1, "width": w})
        for name in ("digits", "mnist1d")
        for w in (2, 16, 128, 1024)
    },
    **{f"mnist-mlp-w{w}": ("mnist", "mlp", {"depth": 1, "width": w}) for w in (16, 256, 1024)},
    **{
        f"{name}-vit-d{d}": (name, "vit", {"patch_size": 4, "depth": 1, "dim": d, "heads": 2})
        for name in ("digits", "mnist1d", "mnist")
        for d in (8, 16, 64)
    },
}
RECIPE = Recipe(optimizer="adamw", batch_size=128, epochs=1, schedule="cosine")
TRAIN_IMAGES, VAL_IMAGES = 1280, 256  # 10 steps and two evaluations of 256 per epoch
ROUNDS = 5
SEEDS = 3  # a ladder pack; --seeds for other pack sizes


def workload(name: str, compare: str, seeds: int = SEEDS) -> dict:
    dataset, family, config = WORKLOADS[name]
    shape = SHAPES[dataset]
    info = DatasetInfo(dataset, shape, 10, "random images of the dataset's shape")
    images = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (TRAIN_IMAGES + VAL_IMAGES, *shape), generator=images)
    y = torch.randint(0, 10, (TRAIN_IMAGES + VAL_IMAGES,), generator=images)
    data = build_dataset(
        info,
        x[:TRAIN_IMAGES].to(torch.uint8),
        y[:TRAIN_IMAGES],
        x[TRAIN_IMAGES:].to(torch.uint8),
        y[TRAIN_IMAGES:],
    )

    def make(generator: torch.Generator) -> torch.nn.Module:
        return build_model(family, config, shape, 10, generator=generator)

    members = [Member(f"s{seed}", 3e-3, 1e-4, seed) for seed in range(seeds)]

    def seconds(variant: str) -> float:
        engine, layout = VARIANTS[variant]
        start = time.perf_counter()
        with mock.patch.object(plain_engine, "memory_format", layout or plain_engine.memory_format):
            train_pack(make_model=make, members=members, recipe=RECIPE, data=data, engine=engine)
        return time.perf_counter() - start

    first, second = COMPARISONS[compare]
    seconds(first), seconds(second)  # warm-up: first-call costs of both
    rounds = [(seconds(first), seconds(second)) for _ in range(ROUNDS)]
    return {
        "workload": name,
        "members": seeds,
        "flops_per_sample": count_flops(make(torch.Generator()), shape),
        f"{first}_s": statistics.median(a for a, _ in rounds),
        f"{second}_s": statistics.median(b for _, b in rounds),
        f"{second}_over_{first}": statistics.median(b / a for a, b in rounds),
        "load_average": os.getloadavg()[0],
    }


def _fixed(layout: torch.memory_format):
    return lambda model, device: layout


# A variant: the engine, and the plain engine's layout (None: its own rule).
VARIANTS = {
    "plain": ("plain", None),
    "batched": ("batched", None),
    "fused": ("fused", None),
    "contiguous": ("plain", _fixed(torch.contiguous_format)),
    "channels_last": ("plain", _fixed(torch.channels_last)),
}
COMPARISONS = {
    "engines": ("plain", "batched"),
    "fused": ("plain", "fused"),
    "layout": ("contiguous", "channels_last"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workloads", nargs="*", help=f"default: all of {', '.join(WORKLOADS)}")
    parser.add_argument(
        "--compare",
        choices=list(COMPARISONS),
        default="engines",
        help="plain against batched or fused (MLPs), or the plain engine contiguous "
        "against channels-last",
    )
    parser.add_argument("--seeds", type=int, default=SEEDS, help="members per pack")
    args = parser.parse_args()
    torch.set_num_threads(1)
    unknown = sorted(set(args.workloads) - set(WORKLOADS))
    if unknown:
        parser.error(f"unknown workloads {unknown}; valid: {', '.join(WORKLOADS)}")
    rows = []
    for name in args.workloads or WORKLOADS:
        rows.append(workload(name, args.compare, args.seeds))
        print(json.dumps(rows[-1]), flush=True)


if __name__ == "__main__":
    main()
