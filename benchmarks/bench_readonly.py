"""Wall time of the verbs that only read a store, against another checkout, in turns.

    minarch run quickstart --db sqlite:///qs.db          # once: the store to read
    python benchmarks/bench_readonly.py --db sqlite:///qs.db --base ../base/src

Each verb runs as a fresh ``python -m minarch`` process (start-up included),
alternating this checkout (A) and ``--base`` (B), ``--repeat`` times each; the
medians and the median of the pairwise ratios A/B are printed. ``run`` finds
nothing left to train and writes the report, as a second ``minarch run`` does.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
VERBS = {
    "analyze": ["analyze"],
    "report": ["report", "--out", "{out}"],
    "run (nothing to train)": ["run", "quickstart", "--out", "{out}"],
}


def timed(src: str, args: list[str], db: str) -> float:
    env = {**os.environ, "PYTHONPATH": src}
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "minarch", *(a.format(out=out) for a in args), "--db", db]
        start = time.perf_counter()
        subprocess.run(command, env=env, check=True, capture_output=True)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="a store holding the quickstart study")
    parser.add_argument("--base", required=True, help="the other checkout's src/ folder")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    print("| verb | A median (s) | B median (s) | A/B (median of pairs) |\n|---|---|---|---|")
    for name, verb in VERBS.items():
        pairs = [
            (timed(str(SRC), verb, args.db), timed(args.base, verb, args.db))
            for _ in range(args.repeat)
        ]
        a, b = (statistics.median(side) for side in zip(*pairs, strict=True))
        ratio = statistics.median(x / y for x, y in pairs)
        print(f"| {name} | {a:.2f} | {b:.2f} | {ratio:.2f} |")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
