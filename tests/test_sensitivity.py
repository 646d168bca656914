"""The view over the whole grid: accuracy along lr and weight decay per architecture, across
seeds, and every run on parallel categories over the study's varied fields."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from minarch.reporting import ReportInput
from minarch.reporting.png import PNG_OPTIONS, _options
from minarch.reporting.sections.sensitivity import hyperparameter_sensitivity
from tests.test_report import frames

LRS = (1e-3, 1e-2, 1e-1)


def grid(wds=(1e-4, 1e-3), seeds=2) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two MLPs on an lr x wd grid; the small one peaks at lr 0.01, the large one at 0.001."""
    runs, epochs = [], []
    for params, peak in ((1_000, -2.0), (10_000, -3.0)):
        for lr in LRS:
            for wd in wds:
                for seed in range(seeds):
                    acc = 0.9 - 0.2 * (np.log10(lr) - peak) ** 2 - 10 * wd + 0.01 * seed
                    run_id = f"{params}-{lr}-{wd}-{seed}"
                    runs.append(
                        {"run_id": run_id, "study": "g", "dataset": "digits", "family": "mlp"}
                        | {"model": f"mlp w{params}", "params": params, "flops": 2 * params}
                        | {"lr": lr, "weight_decay": wd, "seed": seed, "state": "done"}
                        | {"final_val_acc": acc, "best_val_acc": acc}
                        | {"config.model.width": params // 100, "config.training.milestones": [1]}
                    )
                    epochs.append({"run_id": run_id, "epoch": 1, "train_loss": 1.0} | {
                        "val_acc": acc
                    })  # fmt: skip
    return pd.DataFrame(runs), pd.DataFrame(epochs)


def test_accuracy_along_lr_and_weight_decay_per_architecture_across_seeds():
    section = hyperparameter_sensitivity(ReportInput(*grid()))
    slices = section.figures[0].figure
    along_lr = [t for t in slices.data if t.xaxis == "x"]
    assert [t.name for t in along_lr] == ["mlp w1000 (1k)", "mlp w10000 (10k)"]
    small = along_lr[0]
    assert list(small.x) == list(LRS)
    # mean of two seeds (0.9 and 0.91 at the peak) at the chosen weight decay (1e-4)
    assert small.y[1] == pytest.approx(100 * (0.9 - 10 * 1e-4 + 0.005))
    assert small.error_y.array[1] == pytest.approx(100 * np.std([0, 0.01], ddof=1))
    assert list(small.marker.symbol) == ["circle", "star", "circle"]  # the chosen lr
    along_wd = [t for t in slices.data if t.xaxis == "x2"]
    assert list(along_wd[0].x) == [1e-4, 1e-3] and slices.layout.xaxis2.type == "log"
    assert list(slices.layout.xaxis.ticktext) == ["0.001", "0.01", "0.1"]
    (lr_finding, wd_finding) = section.findings
    assert lr_finding.startswith("Digits (8x8): over the learning rates tried")
    assert "for mlp w10000 (" in lr_finding and "at learning rate 0.1" in lr_finding
    assert wd_finding.startswith("Digits (8x8): over the weight decays tried")


def test_a_weight_decay_of_zero_puts_that_axis_in_categories():
    slices = hyperparameter_sensitivity(ReportInput(*grid(wds=(0.0, 5e-4)))).figures[0].figure
    assert slices.layout.xaxis2.type == "category"
    assert list(next(t for t in slices.data if t.xaxis == "x2").x) == ["0 (off)", "0.0005"]


def test_parallel_categories_over_the_varied_fields():
    section = hyperparameter_sensitivity(ReportInput(*grid()))
    (parallel,) = [f.figure for f in section.figures if f.slug == "parallel-digits"]
    (trace,) = parallel.data
    assert trace.type == "parcats"  # SVG: parcoords needs WebGL
    # milestones are the same list everywhere: not varied; family is one value
    labels = [d.label for d in trace.dimensions]
    assert labels == ["params", "learning rate", "weight decay", "width"]
    lr = trace.dimensions[1]
    assert list(lr.categoryarray) == ["0.001", "0.01", "0.1"]
    assert len(lr.values) == 2 * 3 * 2 * 2  # one band per run
    assert len(trace.line.color) == len(lr.values)
    assert _options(parallel) == PNG_OPTIONS  # no legend to make room for


def test_parameter_counts_that_print_alike_stay_apart_on_parallel_categories():
    """Plotly's parcats cannot draw repeated categories (its PNG export failed on
    CIFAR-10 MLPs of 24,674 and 24,746 parameters, both "24.7k")."""
    runs, epochs = grid()
    runs["params"] = runs["params"].map({1_000: 24_674, 10_000: 24_746})
    section = hyperparameter_sensitivity(ReportInput(runs, epochs))
    (parallel,) = [f.figure for f in section.figures if f.slug == "parallel-digits"]
    params = parallel.data[0].dimensions[0]
    assert list(params.categoryarray) == ["24,674", "24,746"]
    assert set(params.values) == {"24,674", "24,746"}


def test_no_view_when_the_grid_varies_only_the_architecture():
    assert hyperparameter_sensitivity(ReportInput(*frames())) is None
    runs, epochs = grid(wds=(1e-4,))
    section = hyperparameter_sensitivity(ReportInput(runs, epochs))
    slices = section.figures[0].figure
    assert {t.xaxis for t in slices.data} == {"x"}  # weight decay fixed: lr panel only
