"""Executor overhead: one study with each executor on this machine's CPUs; prints JSON.

python benchmarks/bench_executors.py                  # the quickstart, 2 CPUs
python benchmarks/bench_executors.py --study my.yaml --cpus 4

Each executor trains the study from an empty store in a fresh process, as a
user's ``minarch run`` would: the in-process executor (``--workers 1``),
``--workers N`` and ``--executor ray`` on a Ray instance started by that
process with N CPUs. ``seconds`` is the process's wall time from start to
exit, Ray's start and stop included, without the report (the same for every
executor); ``train_s`` is what ``run`` itself took. Ratios are against
``--workers N``: Ray's overhead is ``ray / workers - 1``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

CHILD = """
import json, sys, minarch
from rich.console import Console
study, executor, workers = sys.argv[1:]
outcome = minarch.run(study, db="sqlite:///runs.db", device="cpu", executor=executor,
                      workers=workers, report=False, console=Console(quiet=True))
print(json.dumps({"train_s": outcome.summary.seconds, "trained": outcome.summary.trained}))
"""


def _time(study: str, executor: str, workers: str, timeout: float) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MINARCH_")}
        env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # Ray on the loopback interface
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", CHILD, study, executor, workers],
            cwd=folder, env=env, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{executor} with {workers} workers failed:\n{done.stderr[-2000:]}")
    return {"seconds": round(seconds, 1), **json.loads(done.stdout.splitlines()[-1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default="quickstart")
    parser.add_argument("--cpus", type=int, default=2, help="workers, and Ray's CPUs")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per executor")
    options = parser.parse_args()
    cpus = str(options.cpus)
    if hasattr(os, "sched_setaffinity"):  # the children, Ray included, use these CPUs only
        os.sched_setaffinity(0, range(options.cpus))
    rows = {
        "in-process": _time(options.study, "local", "1", options.timeout),
        f"workers-{cpus}": _time(options.study, "local", cpus, options.timeout),
        "ray": _time(options.study, "ray", "auto", options.timeout),
    }
    reference = rows[f"workers-{cpus}"]
    for row in rows.values():
        row["ratio_to_workers"] = round(row["seconds"] / reference["seconds"], 3)
        row["train_ratio_to_workers"] = round(row["train_s"] / reference["train_s"], 3)
        row["train_s"] = round(row["train_s"], 1)
    print(
        json.dumps(
            {
                "study": options.study,
                "cpus": options.cpus,
                "machine": platform.processor() or platform.machine(),
                "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
                "executors": rows,
                "ray_overhead": round(rows["ray"]["ratio_to_workers"] - 1, 3),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
