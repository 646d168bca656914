"""Int8 benchmark: prints one JSON list, a dict per workload, of int8-vs-fp32 size and speed.

python benchmarks/bench_quant.py                    # mlp, cnn, resnet20
python benchmarks/bench_quant.py resnet20 mobilenetv2 vit --threads 1
python benchmarks/bench_quant.py --quick

Both models are timed alternately in the same process, round after round, so
a busy machine slows both alike: report the ratios, not the absolute times.
Sizes are the bytes of ``torch.save(state_dict)`` (``serialized_size``). One
thread by default: on a shared 2-core machine two threads oversubscribe and
the timings scatter by orders of magnitude.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from minarch.models import build_model, count_parameters, cpu_latency_ms, serialized_size
from minarch.quant import QuantError, convert_int8

WORKLOADS = {
    "mlp": ("mlp", {"depth": 2, "width": 256}, (1, 28, 28)),
    "cnn": ("cnn", {"depth": 3, "channels": 32}, (1, 28, 28)),
    "resnet20": ("resnet_cifar", {"depth": 20}, (3, 32, 32)),
    "mobilenetv2": ("mobilenetv2_cifar", {"width_multiplier": 1.0}, (3, 32, 32)),
    "vit": ("vit", {"dim": 64, "heads": 4}, (3, 32, 32)),
}
DEFAULT = ("mlp", "cnn", "resnet20")


def _alternate(fp32, int8, shape: tuple[int, ...], batch: int, rounds: int, repeats: int) -> dict:
    """Median latencies over ``rounds`` alternating measurements, and their median ratio."""
    times: dict[str, list[float]] = {"fp32": [], "int8": []}
    for _ in range(rounds):
        for name, model in (("fp32", fp32), ("int8", int8)):
            ms = cpu_latency_ms(model, shape, batch_size=batch, warmup=2, repeats=repeats)
            times[name].append(ms)
    ratios = [f / i for f, i in zip(times["fp32"], times["int8"], strict=True)]
    return {
        "fp32_ms": round(statistics.median(times["fp32"]), 3),
        "int8_ms": round(statistics.median(times["int8"]), 3),
        "speedup": round(statistics.median(ratios), 2),
    }


def run(name: str, *, quick: bool) -> dict:
    family, config, shape = WORKLOADS[name]
    model = build_model(family, config, shape, 10, generator=torch.Generator().manual_seed(0))
    model.eval()
    calibration = torch.randn(64, *shape, generator=torch.Generator().manual_seed(1))
    result = {"workload": name, "family": family, "params": count_parameters(model)}
    start = time.perf_counter()
    try:
        int8 = convert_int8(model, shape, calibration)
    except QuantError as error:
        return {**result, "error": str(error)}
    result["convert_s"] = round(time.perf_counter() - start, 1)
    fp32_bytes, int8_bytes = serialized_size(model), serialized_size(int8)
    result |= {
        "fp32_bytes": fp32_bytes,
        "int8_bytes": int8_bytes,
        "size_ratio": round(fp32_bytes / int8_bytes, 2),
    }
    with torch.no_grad():
        reference, output = model(calibration), int8(calibration)
    result["top1_agreement"] = float((reference.argmax(1) == output.argmax(1)).float().mean())
    rounds, repeats = (2, 5) if quick else (7, 15)
    for batch in (1, 64):
        result[f"batch{batch}"] = _alternate(model, int8, shape, batch, rounds, repeats)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workloads", nargs="*", help=f"{', '.join(WORKLOADS)} (default: {DEFAULT})")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--quick", action="store_true", help="few repeats: a smoke test")
    args = parser.parse_args()
    unknown = sorted(set(args.workloads) - set(WORKLOADS))
    if unknown:
        parser.error(f"unknown workloads {unknown}; valid: {', '.join(WORKLOADS)}")
    torch.set_num_threads(args.threads)
    environment = {
        "torch": torch.__version__,
        "torchao": _version("torchao"),
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
    }
    results = [run(name, quick=args.quick) | environment for name in args.workloads or DEFAULT]
    print(json.dumps(results, indent=2))


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


if __name__ == "__main__":
    main()
