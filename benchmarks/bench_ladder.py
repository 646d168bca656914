"""The ladder's real mix against the roofline: prints one JSON object.

python benchmarks/bench_ladder.py                       # every pack, 2 epochs (a few minutes)
python benchmarks/bench_ladder.py --epochs 1 --families cnn vit
python benchmarks/bench_ladder.py --families cnn --precision fp32 bf16   # bf16 against fp32

Trains every pack of studies/minimal-architectures-cpu.yaml (every family and
dataset, the real data and its split sizes) as ``minarch run`` would: cut per
worker as ``--workers auto`` cuts them on this machine, each with the engine
the trainer picks, in ONE thread, for ``--epochs`` epochs instead of 20. Each
``train_pack`` call is timed whole: steps, validation passes, engine set-up.

- FLOPs of a pack: members × epochs × (3 × forward FLOPs × training images +
  forward FLOPs × (validation images + the training subset measured in eval
  mode each epoch)), forward FLOPs from ``count_flops`` (2 × MACs). Without
  that subset's pass (before its time) the ladder is 31.1 TFLOP; with it, 37.5.
- ``peak_fraction``: GFLOP/s over the one-thread float32 matmul peak
  (2048 × 2048), measured in the same run, before the packs.
- ``roofline_ratio``: the time measured over the FLOP-bound time (FLOPs at
  that peak); the same ratio holds for the whole ladder on N workers if the
  cores are as fast in parallel as alone.
- ``--precision fp32 bf16``: every pack trains once per precision, in turns
  (pack by pack, so load drifts hit both alike); ``bf16_over_fp32`` gives each
  family's and dataset's time ratio. bf16 pays only where the CPU has bf16
  matrix units (AMX, AVX-512 BF16); the JSON says whether it has them.

Needs MINARCH_DATA_DIR with MNIST, Fashion-MNIST and cifar10-jpeg, as the
ladder does. The machine should be quiet; the JSON carries the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections import defaultdict
from pathlib import Path

import torch

import minarch
from minarch.bench.measure import matmul_peak
from minarch.data import default_data_dir
from minarch.execute import DatasetCache, Pack
from minarch.execute.derived import ordinary_start
from minarch.execute.policy import split_for_workers, usable_cores
from minarch.models import count_flops
from minarch.train import Hooks, train_pack
from minarch.train.plain import train_eval_split
from minarch.train.precision import cpu_has_bf16_units

LADDER = Path(__file__).parents[1] / "studies" / "minimal-architectures-cpu.yaml"


def pack_flops(pack: Pack, data, epochs: int) -> float:
    """Training and evaluation FLOPs of ``epochs`` epochs of every member: 3 forwards'
    worth per training image, and one per image of the two eval-mode passes (the
    validation split, and the training subset ``train_eval_split`` measures)."""
    forward = count_flops(
        ordinary_start(pack.first, data).make_model(torch.Generator()), data.info.input_shape
    )
    evaluated = len(data.val_y) + len(train_eval_split(data)[1])
    per_epoch = 3 * forward * len(data.train_y) + forward * evaluated
    return len(pack.configs) * epochs * per_epoch


def time_pack(pack: Pack, data, epochs: int, precision: str) -> tuple[float, str]:
    """Seconds of one whole ``train_pack`` call, and the engine it ran."""
    start = ordinary_start(pack.first, data)
    began = time.perf_counter()
    results = train_pack(
        make_model=start.make_model,
        members=pack.members(),
        recipe=pack.recipe().model_copy(update={"epochs": epochs, "precision": precision}),
        data=data,
        device=torch.device("cpu"),
        hooks=Hooks(),
        engine=start.engine,
    )
    return time.perf_counter() - began, results[0].engine


def _rates(rows: list[dict], peak: float) -> dict:
    seconds = sum(r["seconds"] for r in rows)
    flops = sum(r["gflop"] for r in rows) * 1e9
    return {
        "packs": len(rows),
        "seconds": round(seconds, 2),
        "gflop": round(flops / 1e9, 3),
        # Significant digits: a tiny pack's rate is far below 0.01 GFLOP/s.
        "gflops_per_s": float(f"{flops / seconds / 1e9:.3g}"),
        "peak_fraction": float(f"{flops / seconds / peak:.3g}"),
        "engines": sorted({r["engine"] for r in rows}),
    }


def bf16_ratios(by_precision: dict[str, list[dict]]) -> dict[str, float]:
    """bf16 time over fp32 time, overall, per family and per family/dataset (below 1: bf16
    is faster)."""
    sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for precision, rows in by_precision.items():
        for row in rows:
            for key in ("all", row["family"], f"{row['family']}/{row['dataset']}"):
                sums[key][precision] += row["seconds"]
    return {key: round(s["bf16"] / s["fp32"], 3) for key, s in sorted(sums.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", type=Path, default=LADDER)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--families", nargs="+", help="only these families (default: all)")
    parser.add_argument(
        "--workers",
        type=int,
        default=usable_cores(),
        help="cut packs as this many workers would (default: usable cores)",
    )
    parser.add_argument(
        "--precision",
        nargs="+",
        choices=["fp32", "bf16"],
        default=["fp32"],
        help="train every pack once per precision, in turns (default: fp32)",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    load_before = os.getloadavg()
    peak = matmul_peak(torch.device("cpu"))
    plan = minarch.plan(args.study)
    packs = split_for_workers(plan.packs(), torch.device("cpu"), args.workers)
    if args.families:
        packs = [p for p in packs if p.first.model.family in args.families]
    datasets = DatasetCache(default_data_dir(), torch.device("cpu"), download=False)
    rows = []
    began = time.perf_counter()
    for pack in packs:
        data = datasets.get(pack.first.dataset)
        for precision in args.precision:
            seconds, engine = time_pack(pack, data, args.epochs, precision)
            rows.append(
                {
                    "pack": pack.label,
                    "dataset": pack.first.dataset.name,
                    "family": pack.first.model.family,
                    "members": len(pack.configs),
                    "precision": precision,
                    "engine": engine,
                    "seconds": round(seconds, 3),
                    "gflop": pack_flops(pack, data, args.epochs) / 1e9,
                }
            )
    wall = time.perf_counter() - began
    by_precision = {p: [r for r in rows if r["precision"] == p] for p in args.precision}
    first = by_precision[args.precision[0]]  # the rates and the roofline: the first precision
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in first:
        groups[row["family"],].append(row)
        groups[row["family"], row["dataset"]].append(row)
    total = _rates(first, peak)
    bound = sum(r["gflop"] for r in first) * 1e9 / peak
    print(
        json.dumps(
            {
                "study": str(args.study),
                "machine": platform.machine(),
                "torch": torch.__version__,
                "threads": 1,
                "cpu_has_bf16_units": cpu_has_bf16_units(),
                "precisions": args.precision,
                "workers_cut": args.workers,
                "epochs": args.epochs,
                "load_average_before": [round(v, 2) for v in load_before],
                "load_average_after": [round(v, 2) for v in os.getloadavg()],
                "matmul_peak_gflops": round(peak / 1e9, 1),
                "families": {key[0]: _rates(g, peak) for key, g in groups.items() if len(key) == 1},
                "family_dataset": {
                    "/".join(key): _rates(g, peak) for key, g in groups.items() if len(key) == 2
                },
                "total": {
                    **total,
                    "wall_seconds": round(wall, 1),
                    "flop_bound_seconds": round(bound, 2),
                    "roofline_ratio": round(total["seconds"] / bound, 2),
                },
                **({"bf16_over_fp32": bf16_ratios(by_precision)} if len(by_precision) > 1 else {}),
                "packs": rows,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
