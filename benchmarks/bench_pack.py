"""Pack-engine benchmark: prints one JSON list, a dict per workload.

python benchmarks/bench_pack.py                     # all workloads, CPU
python benchmarks/bench_pack.py mlp-grid --engine fused
python benchmarks/bench_pack.py --device cuda --quick
"""

from __future__ import annotations

import argparse
import json

from minarch.bench import run_benchmarks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workloads", nargs="*", help="mlp-grid, cnn, resnet20, vit (default: all)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    parser.add_argument("--engine", default="auto", choices=("auto", "fused", "plain"))
    args = parser.parse_args()
    results = run_benchmarks(
        args.workloads or None, device=args.device, quick=args.quick, engine=args.engine
    )
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
