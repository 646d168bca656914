"""Real training on MNIST: a one-unit MLP and a 64-unit one land in different regimes."""

from __future__ import annotations

import os

import pytest

import minarch
from minarch.analysis import analyze

pytestmark = [
    pytest.mark.slow,
    pytest.mark.real_data("mnist"),
]

# 2 % of MNIST (1,140 images) trains in about a second per epoch on one core;
# a held-out 2 % (1,200 images) validates.
STUDY = """\
name: regimes-real
datasets: [{name: mnist, train_fraction: 0.02, validation: 0.02}]
models: [{family: mlp, depth: 1, width: [1, 64]}]
training: {optimizer: adamw, lr: 0.003, weight_decay: 0.0001, batch_size: 128,
           epochs: 6, schedule: cosine, warmup_epochs: 1}
seeds: 2
analysis: {bootstrap: 100}
"""


def test_tiny_and_reasonable_mlps_land_in_different_regimes(tmp_path):
    study = tmp_path / "regimes-real.yaml"
    study.write_text(STUDY)
    db = f"sqlite:///{tmp_path}/r.db"
    minarch.run(
        study,
        db=db,
        data_dir=os.environ["MINARCH_DATA_DIR"],
        out=tmp_path / "reports",
        device="cpu",
        workers=1,  # in this process: no worker processes that each load MNIST again
    )
    runs, epochs = minarch.runs(db=db), minarch.epochs(db=db)
    result = analyze(runs, epochs, minarch.load_study(study).analysis)
    by_width = result.architectures.set_index("model")["regime"]
    assert by_width["mlp d1 w1"] == "unstable", result.runs[["model", "seed", "rule"]]
    assert by_width["mlp d1 w64"] in ("learning", "overfitting")
    (row,) = result.minimal.to_dict("records")
    # Only the largest size tested qualifies: P_min is a bound ("≥"), marked as such.
    assert row["p_min_edge"] == "upper" and row["p_min"] == runs["params"].max()
    html = (tmp_path / "reports" / "regimes-real" / "report.html").read_text()
    assert "Convergence regimes and minimal parameters" in html
