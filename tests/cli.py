"""Run the installed ``minarch`` command as a user would, in a subprocess, and see where it is."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from minarch.cli import RUN_OPENING
from minarch.store import Store

TINY_STUDY = """
name: tiny
datasets: [digits]
models:
  - family: mlp
    width: [4, 32]
training:
  optimizer: adamw
  lr: 0.01
  epochs: 3
  batch_size: 64
seeds: 2
"""


def minarch(*args: str, cwd: Path, env: dict | None = None, timeout: float = 600):
    """``minarch ARGS`` with a clean environment; returns the CompletedProcess."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MINARCH_")}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "minarch", *args],
        cwd=cwd,
        env=environment,
        stdin=subprocess.DEVNULL,  # no terminal: a command never waits for an answer
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    """stderr's lines, less the line `minarch run` opens with before anything can fail."""
    lines = result.stderr.strip().splitlines()
    opening = lines[:1] and lines[0].endswith(RUN_OPENING)
    return lines[1:] if opening else lines


FULL_STUDY = """
name: full
datasets: [digits]
models:
  - family: mlp
    width: [4, 16]
training:
  optimizer: adamw
  lr: [0.003, 0.03]
  weight_decay: [0.0, 0.001]
  epochs: 2
  batch_size: 64
seeds: 1
prune:
  unstructured: {scope: [global], sparsity: [0.5, 0.9]}
  pipelines: [oneshot]
quantize:
  bits: [8, 4]
  granularity: [channel]
  int8: true
"""
"""A small study with every kind of analysis table: regimes, pruning, quantization and
a 2 x 2 learning-rate x weight-decay grid."""


def mid_run(store: Store, epochs: int) -> bool:
    """Whether a running run has stored some of its ``epochs`` but not all: a time to kill.

    Not all: a pack's runs are marked done one by one, so a running run with every
    epoch stored may be done by the time a signal lands.
    """
    running = {r.id for r in store.runs(states=["running"])}
    stored = store.epochs_frame().groupby("run_id")["epoch"].count()
    return any(0 < stored.get(run_id, 0) < epochs for run_id in running)


def trained_here(stderr: str) -> int:
    """How many runs ``minarch run`` says it trained itself: done, less those of other processes."""
    done = re.search(r"trained (\d+) done", stderr)
    others = re.search(r"\((\d+) of them by other processes\)", stderr)
    return (int(done.group(1)) if done else 0) - (int(others.group(1)) if others else 0)
