"""Contention benchmark: a small study alone and beside a CPU-hungry process; prints JSON lines.

python benchmarks/bench_contention.py                     # quickstart, both policies
python benchmarks/bench_contention.py --study my.yaml --policies default

Each policy trains the study from an empty store twice: once on a quiet
machine and once while a competitor (a 2-thread torch matmul loop, started
and stopped here) runs. ``slowdown = loaded / alone``; a fair share of 2
cores gives about 2x. Policies:

- ``default``: what ``minarch run`` does now (``--workers auto``, 1 thread per pack);
- ``torch-threads``: the old default, one process with torch's own thread count
  (``--workers 1 --threads <cores>``), the plain baseline.

The time is the one ``minarch run`` prints for training and evaluation
("trained ... in N s"); writing the report is not timed. A loaded run that
passes ``--timeout`` is stopped and reported as a lower bound
(``loaded_s: null``, ``slowdown_at_least``): the old default can take hours.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time

COMPETITOR = """
import torch
torch.set_num_threads(2)
a = torch.randn(1024, 1024)
while True:
    a = torch.tanh(a @ a / 1024.0)
"""
POLICIES = {
    "default": [],
    "torch-threads": ["--workers", "1", "--threads", str(os.cpu_count() or 1)],
}


def _train_seconds(study: str, args: list[str], timeout: float) -> float | None:
    """Wall time of ``minarch run`` on a fresh store, as it reports it; None past ``timeout``."""
    with tempfile.TemporaryDirectory() as folder:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MINARCH_", "OMP_"))}
        started = time.perf_counter()
        try:
            done = subprocess.run(
                [sys.executable, "-m", "minarch", "run", study, "--db", "sqlite:///runs.db",
                 "--device", "cpu", "--out", "reports", *args],
                cwd=folder, env=env, capture_output=True, text=True, timeout=timeout,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            return None
        if done.returncode != 0:
            raise SystemExit(f"minarch run failed:\n{done.stderr[-2000:]}")
        reported = re.search(r"in ([0-9.]+) s", done.stderr)
        return float(reported.group(1)) if reported else time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default="quickstart")
    parser.add_argument("--policies", nargs="+", default=list(POLICIES), choices=list(POLICIES))
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per training")
    options = parser.parse_args()
    for policy in options.policies:
        alone = _train_seconds(options.study, POLICIES[policy], options.timeout)
        if alone is None:
            raise SystemExit(f"{policy}: the study alone took over {options.timeout:g} s")
        competitor = subprocess.Popen([sys.executable, "-c", COMPETITOR])
        try:
            time.sleep(2)  # the competitor is up and spinning
            loaded = _train_seconds(options.study, POLICIES[policy], options.timeout)
        finally:
            competitor.kill()
            competitor.wait()
        row = {"policy": policy, "study": options.study, "alone_s": round(alone, 1)}
        if loaded is None:  # stopped at the timeout: a lower bound
            row |= {"loaded_s": None, "slowdown_at_least": round(options.timeout / alone, 2)}
        else:
            row |= {"loaded_s": round(loaded, 1), "slowdown": round(loaded / alone, 2)}
        row |= {"cores": os.cpu_count(), "machine": platform.processor() or platform.machine()}
        print(json.dumps(row), flush=True)  # one line per policy, as soon as it is measured


if __name__ == "__main__":
    main()
