"""``run_benchmarks``: every workload against its baseline, in one process, as plain dicts.

Baseline, minarch and the matmul peak are measured in the same run, so the
ratios hold on a machine that other jobs share even when absolute rates do not.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from minarch.bench.measure import (
    VALIDATION_SAMPLES,
    baseline_rate,
    matmul_peak,
    minarch_rate,
    random_data,
)
from minarch.bench.workloads import Workload, select
from minarch.data import Dataset, DatasetInfo, default_data_dir, load_dataset
from minarch.data.load import DATA_DIR_ENV
from minarch.errors import BenchError, MinarchError
from minarch.models import build_model, count_flops, describe
from minarch.train import Recipe

CLASSES = 10
ROUNDS = 2  # baseline and minarch timed alternately this often; the best of each counts


def run_benchmarks(
    workloads: list[str] | None = None,
    *,
    device: str = "cpu",
    quick: bool = False,
    engine: str = "auto",
) -> list[dict]:
    """Time each workload's baseline and minarch's pack engine; one dict per workload.

    Each side's rate is the best of ``ROUNDS`` alternating timings.
    ``engine`` forces minarch's engine ("fused" or "plain") to measure the
    rule "auto" follows. ``quick`` shrinks every workload to a smoke test.
    """
    target = torch.device(device)
    if target.type == "cuda" and not torch.cuda.is_available():
        raise BenchError("device 'cuda' was asked for but torch sees no CUDA device")
    chosen = select(workloads, quick=quick)  # bad names fail before anything is timed
    peak = matmul_peak(target, repeats=1 if quick else 5)
    rounds = 1 if quick else ROUNDS
    return [_run(w, target, peak, engine, rounds) for w in chosen]


def _run(workload: Workload, device: torch.device, peak: float, engine: str, rounds: int) -> dict:
    def make_model(generator: torch.Generator) -> nn.Module:
        return build_model(
            workload.family, workload.config, workload.input_shape, CLASSES, generator=generator
        )

    members = workload.members()
    data = _data(workload).to(device)
    recipe = Recipe(batch_size=workload.batch_size, epochs=1, schedule="constant")
    baselines, rates = [], []
    for _ in range(rounds):  # alternating, so a burst of load hits both sides alike
        baselines.append(
            baseline_rate(
                make_model,
                members[:2],  # one model at a time: the rate of two stands for all
                data,
                momentum=recipe.momentum,
                batch_size=workload.batch_size,
                warmup_steps=workload.warmup_steps,
            )
        )
        rate, used = minarch_rate(
            make_model,
            members,
            data,
            recipe=recipe,
            warmup_steps=workload.warmup_steps,
            engine=engine,
        )
        rates.append(rate)
    baseline, rate = max(baselines), max(rates)  # load only ever slows a run down
    forward_flops = count_flops(make_model(torch.Generator()), workload.input_shape)
    return {
        "workload": workload.name,
        "members": len(members),
        "baseline_samples_per_s": baseline,
        "minarch_samples_per_s": rate,
        "speedup": rate / baseline,
        "peak_fraction": 3 * forward_flops * rate / peak,
        "engine": used,
        "model": describe(workload.family, workload.config),
        "batch_size": workload.batch_size,
        "timed_steps": workload.steps,
        "forward_flops_per_sample": forward_flops,
        "matmul_peak_flops": peak,
        "rounds": rounds,
        "threads": torch.get_num_threads(),
        "device": str(device),
    }


def _data(workload: Workload) -> Dataset:
    """Exactly warm-up + timed steps of training samples: real MNIST if present, else random."""
    n = workload.batch_size * (workload.warmup_steps + workload.steps)
    if workload.mnist and os.environ.get(DATA_DIR_ENV):
        try:
            mnist = load_dataset("mnist", Path(default_data_dir()), download=False)
        except MinarchError:
            mnist = None
        if mnist is not None and len(mnist.train_y) >= n:
            return Dataset(
                mnist.info,
                mnist.train_x[:n],
                mnist.train_y[:n],
                mnist.val_x[:VALIDATION_SAMPLES],
                mnist.val_y[:VALIDATION_SAMPLES],
                mnist.mean,
                mnist.std,
            )
    info = DatasetInfo("random", workload.input_shape, CLASSES, "random benchmark data")
    return random_data(info, n)
