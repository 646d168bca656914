"""Wall and CPU time of the verbs that read a trained store, against another checkout, in turns.

    minarch run quickstart --db sqlite:///qs.db          # once: the store to read
    python benchmarks/bench_readonly.py --db sqlite:///qs.db --base ../base/src

Each round runs, for this checkout (A) and then ``--base`` (B), on a fresh
copy of the store in a fresh folder, one ``python -m minarch`` process (start-up
included) per step: ``analyze``; ``report`` into the empty folder (the first
build); ``report`` again on the unchanged store; ``run`` with nothing left to
train, whose report the first step wrote, as a second ``minarch run`` finds it.
Rounds repeat ``--repeat`` times, A and B in turns (A B A B ...). Printed as
one JSON object: the machine, and per step the medians of A's and B's wall and
CPU seconds, the medians of the pairwise ratios A/B, and the lowest and highest
1-minute load average seen before a step. CPU time is the process's and its
waited-for children's (Chromium's helpers may escape it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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
    steps = {
        step: _summary([r[0][step] for r in rounds], [r[1][step] for r in rounds]) for step in STEPS
    }
    machine = {"cpu": _cpu(), "cores": os.cpu_count(), "python": platform.python_version()}
    report = {"a": str(SRC), "b": args.base, "rounds": args.repeat, "machine": machine}
    print(json.dumps(report | {"steps": steps}, indent=1))


def _summary(a: list[tuple[float, float, float]], b: list[tuple[float, float, float]]) -> dict:
    """Medians of A's and B's (wall, CPU) seconds and of their pairwise ratios; the loads seen."""
    out = {}
    for i, what in ((0, "wall"), (1, "cpu")):
        out[f"a_{what}_s"] = round(statistics.median(x[i] for x in a), 2)
        out[f"b_{what}_s"] = round(statistics.median(y[i] for y in b), 2)
        out[f"a/b_{what}"] = round(
            statistics.median(x[i] / y[i] for x, y in zip(a, b, strict=True)), 2
        )
    loads = [x[2] for x in a + b]
    return out | {"load": [round(min(loads), 1), round(max(loads), 1)]}


def _cpu() -> str:
    """The processor's model name, as /proc/cpuinfo gives it (else the platform's)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return next(ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor()


if __name__ == "__main__":
    main()
