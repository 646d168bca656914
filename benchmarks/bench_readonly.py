"""Wall and CPU time of the verbs that read a trained store, against another checkout, in turns.

    minarch run quickstart --db sqlite:///qs.db          # once: the store to read
    python benchmarks/bench_readonly.py --db sqlite:///qs.db --base ../base/src

Each round runs, for this checkout (A) and then ``--base`` (B), on a fresh
copy of the store in a fresh folder, one ``python -m minarch`` process (start-up
included) per step: ``analyze``; ``report`` into the empty folder (the first
build); ``report`` again on the unchanged store; ``run`` with nothing left to
train, whose report the first step wrote, as a second ``minarch run`` finds it.
Rounds repeat ``--repeat`` times; the medians and the medians of the pairwise
ratios A/B are printed, with the load average around each step. CPU time is
the process's and its waited-for children's (Chromium's helpers may escape it).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
STEPS = {
    "analyze": ["analyze"],
    "report (first build)": ["report", "--out", "reports"],
    "report (unchanged store)": ["report", "--out", "reports"],
    "run (nothing to train)": ["run", "quickstart", "--out", "reports"],
}


def timed(src: str, args: list[str], folder: Path) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and the 1-minute load average before ``minarch ARGS``."""
    env = {**os.environ, "PYTHONPATH": src}
    command = [sys.executable, "-m", "minarch", *args, "--db", "sqlite:///store.db"]
    load, before = os.getloadavg()[0], resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, env=env, cwd=folder, check=True, capture_output=True)
    wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, cpu, load


def round_(src: str, db: Path) -> dict[str, tuple[float, float, float]]:
    """Every step once, in order, on a fresh copy of the store."""
    with tempfile.TemporaryDirectory() as folder:
        shutil.copy(db, Path(folder) / "store.db")
        return {name: timed(src, args, Path(folder)) for name, args in STEPS.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="a SQLite store holding the quickstart study")
    parser.add_argument("--base", required=True, help="the other checkout's src/ folder")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    db = Path(args.db.removeprefix("sqlite:///"))
    rounds = [(round_(str(SRC), db), round_(args.base, db)) for _ in range(args.repeat)]
    print(
        "| step | A wall (s) | B wall (s) | A/B wall | A CPU (s) | B CPU (s) | A/B CPU | load |\n"
        "|---|---|---|---|---|---|---|---|"
    )
    for step in STEPS:
        a, b = [r[0][step] for r in rounds], [r[1][step] for r in rounds]
        cells = []
        for i in (0, 1):
            ratios = [x[i] / y[i] for x, y in zip(a, b, strict=True)]
            cells += [statistics.median(x[i] for x in a), statistics.median(y[i] for y in b)]
            cells += [statistics.median(ratios)]
        loads = [x[2] for x in a + b]
        print(
            f"| {step} | {cells[0]:.1f} | {cells[1]:.1f} | {cells[2]:.2f} | {cells[3]:.1f} "
            f"| {cells[4]:.1f} | {cells[5]:.2f} | {min(loads):.1f}–{max(loads):.1f} |"
        )


if __name__ == "__main__":
    main()
