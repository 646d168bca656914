"""One big pack on a CPU: trained by one worker, or cut into one part per worker; prints JSON.

python benchmarks/bench_split.py             # a 49-member CNN grid on digits, 2 workers

The study is one pack, like the base grid of an hpspace study: a CNN at 7 x 7
learning rates x weight decays. ``--workers 1`` is how such a study trained
before packs were cut per worker (``--workers auto`` stopped at one worker per
pack); ``--workers N`` cuts the pack in N parts. Both train from an empty store
in a fresh process, one after the other, so the ratio holds on a shared
machine. The runs' final metrics must be identical (on a CPU a run's numbers
do not depend on its pack); the benchmark fails if they are not.
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
from pathlib import Path

STUDY = """
name: one-pack
datasets: [{name: digits, validation: 0.2}]
models: [{family: cnn, depth: 3, channels: 32}]
training:
  epochs: 10
  batch_size: 64
  lr: {log10: {center: -1.2, half_width: 0.6, step: 0.2}}
  weight_decay: {log10: {center: -3, half_width: 0.6, step: 0.2}}
seeds: [0]
"""
CHILD = """
import json, sys, minarch
from rich.console import Console
workers = sys.argv[1]
minarch.run("one-pack.yaml", db="sqlite:///runs.db", device="cpu", workers=workers,
            report=False, console=Console(quiet=True))
runs = minarch.runs(db="sqlite:///runs.db").set_index("run_id").sort_index()
print(json.dumps(runs["final_val_acc"].tolist()))
"""


def _train(workers: str, timeout: float) -> tuple[float, list[float]]:
    """Wall time of a fresh process training the study, and its runs' final accuracies."""
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "one-pack.yaml").write_text(STUDY)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MINARCH_", "OMP_"))}
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", CHILD, workers],
            cwd=folder, env=env, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"--workers {workers} failed:\n{done.stderr[-2000:]}")
    return seconds, json.loads(done.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="the parts the pack is cut in")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per training")
    options = parser.parse_args()
    whole, whole_acc = _train("1", options.timeout)
    cut, cut_acc = _train(str(options.workers), options.timeout)
    if whole_acc != cut_acc:
        raise SystemExit("a cut pack trained different numbers from the whole one")
    row = {
        "runs": len(whole_acc),
        "one_worker_s": round(whole, 1),
        "cut_s": round(cut, 1),
        "workers": options.workers,
        "speedup": round(whole / cut, 2),
        "identical_metrics": True,
        "cores": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
    }
    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
