"""``minarch plan --time``: step times measured per pack, times each pack's steps."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from rich.console import Console

from minarch.errors import MinarchError
from minarch.execute import estimate as estimate_module
from minarch.execute import plan_study
from minarch.execute.estimate import estimate_training
from minarch.spec import parse_study
from minarch.terminal import duration
from tests.cli import minarch

STUDY = """
name: timed
datasets: [{name: digits, validation: 0.2, train_fraction: 0.5}]
models: [{family: mlp, width: [4, 16]}]
training: {epochs: 3, batch_size: 32, lr: [0.01, 0.1]}
seeds: 2
"""


def timed(extra: str = ""):
    study = parse_study(STUDY + extra)
    quiet = Console(quiet=True)
    return estimate_training(plan_study(study, STUDY + extra), torch.device("cpu"), quiet)


def test_each_pack_counts_its_steps_from_the_split_it_trains_on():
    estimate = timed()
    assert [len(p.pack.configs) for p in estimate.packs] == [4, 4]  # 2 lrs x 2 seeds per width
    samples = round(round(1437 * (1 - 0.2)) * 0.5)  # digits' 1,437 train images
    assert all(p.steps == 3 * math.ceil(samples / 32) for p in estimate.packs)
    assert all(p.seconds_per_step > 0 for p in estimate.packs)
    total = sum(p.steps * p.seconds_per_step for p in estimate.packs)
    assert estimate.seconds == pytest.approx(total) and estimate.workers >= 1
    frame = estimate.frame()
    assert list(frame["runs"]) == [4, 4]
    assert frame["seconds"].sum() == pytest.approx(estimate.seconds)


def test_a_structured_retrain_is_scaled_by_its_flops_target(monkeypatch):
    monkeypatch.setattr(estimate_module, "_seconds_per_step", lambda pack, info, device: 1.0)
    pruned = """
prune:
  structured: {scope: [uniform], flops_remaining: [0.5]}
  pipelines: [retrain]
"""
    estimate = timed(pruned)
    per_step = {p.pack.first.derived is None: p.seconds_per_step for p in estimate.packs}
    assert per_step == {True: 1.0, False: 0.5}  # base packs as timed, retrains at half


def test_a_dataset_of_unknown_size_is_named(monkeypatch):
    real = estimate_module.dataset_info
    monkeypatch.setattr(
        estimate_module,
        "dataset_info",
        lambda *args, **kwargs: replace(real(*args, **kwargs), train_size=None),
    )
    with pytest.raises(MinarchError, match="digits: its training-set size is unknown"):
        timed()


def test_durations_read_at_a_glance():
    assert [duration(s) for s in (42.4, 89, 600, 5300, 5400, 11_100)] == [
        "42 s",
        "89 s",
        "10 min",
        "88 min",
        "1 h 30 min",
        "3 h 05 min",
    ]


def test_plan_time_prints_a_column_and_the_total(tmp_path):
    (tmp_path / "timed.yaml").write_text(STUDY)
    done = minarch("plan", "timed.yaml", "--time", "--device", "cpu", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "training" in done.stdout
    assert "runs left on cpu:" in done.stdout and "evaluation not included" in done.stdout
    plain = minarch("plan", "timed.yaml", "--set", "datasets=[digits]", cwd=tmp_path)
    assert plain.returncode == 0 and "runs left on" not in plain.stdout
    assert "with datasets=[digits]" in plain.stdout  # an override is shown as typed, not as markup
