"""One chosen configuration per architecture, one dataset order, analysis apart from the report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from minarch.analysis import analyze
from minarch.data import DatasetInfo
from minarch.data.registry import register
from minarch.errors import DataError
from minarch.reporting import ReportInput
from minarch.reporting.sections.pruning import section_rows
from minarch.reporting.sections.summary import summary_tables
from tests.test_analysis import EPOCHS, run_frames
from tests.test_compression import pruned


def test_a_dataset_registers_only_with_a_difficulty():
    with pytest.raises(DataError, match="difficulty"):
        register(DatasetInfo("unranked", (1, 4), 2, "no rank"))(lambda req: None)


def peaked_and_steady():
    """Two lrs of one architecture: lr 1e-3 peaks at 95 % and ends at 80 %, lr 1e-2 ends at 90 %.

    By the best epoch lr 1e-3 wins; by the final accuracy (docs/methods.md A.1) lr 1e-2.
    """
    peaked = np.r_[np.linspace(0.3, 0.95, EPOCHS // 2), np.linspace(0.9, 0.80, EPOCHS // 2)]
    curves = {
        1e-3: {"val_acc": peaked, "train_acc": np.linspace(0.3, 0.85, EPOCHS)},
        1e-2: {"val_acc": np.linspace(0.3, 0.90, EPOCHS)},
    }
    return run_frames([({"lr": lr, "seed": s}, c) for lr, c in curves.items() for s in (0, 1)])


def test_every_section_shows_the_same_chosen_configuration():
    runs, epochs = peaked_and_steady()
    archs = analyze(runs, epochs).architectures
    assert archs.loc[archs["chosen"], "lr"].tolist() == [1e-2]
    html = "".join(p for p in summary_tables(ReportInput(runs, epochs)).parts)
    assert "<td>0.01</td>" in html and "<td>0.001</td>" not in html  # lr as a number
    parents = runs.set_index("lr")["final_val_acc"]
    compressed = pd.DataFrame(
        [
            *pruned({0: [0.8] * 4, 1: [0.8] * 4}, lr=1e-3, base_val_acc=parents[1e-3].iloc[0]),
            *pruned({0: [0.8] * 4, 1: [0.8] * 4}, lr=1e-2, base_val_acc=parents[1e-2].iloc[0]),
        ]
    ).assign(model="mlp w8", params=100, weight_decay=0.0)
    rows, _ = section_rows(ReportInput(runs, epochs, None, compressed), "prune")
    assert set(rows["lr"]) == {1e-2}
