"""Tables read in an 80-column terminal: compact views, percent, "none", integers."""

from __future__ import annotations

import io
import math
import re

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

import minarch
from minarch.store import open_store
from minarch.tables import TABLES
from minarch.terminal import cell, print_analysis, print_frame, whole_numbers
from tests.cli import TINY_STUDY
from tests.cli import minarch as minarch_cli


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """The tiny study trained, and a second study of it with one run still pending."""
    folder = tmp_path_factory.mktemp("terminal")
    (folder / "tiny.yaml").write_text(TINY_STUDY)
    db = f"sqlite:///{folder / 'runs.db'}"
    quiet = Console(quiet=True)
    minarch.run(folder / "tiny.yaml", db=db, device="cpu", workers=1, report=False, console=quiet)
    more = TINY_STUDY.replace("name: tiny", "name: more").replace("[4, 32]", "[4, 32, 64]")
    (folder / "more.yaml").write_text(more)
    with open_store(db) as opened:
        opened.register_study(
            "more", more, [r.new_run() for r in minarch.plan(folder / "more.yaml").runs]
        )
    return folder, db


@pytest.mark.parametrize(
    ("column", "value", "text"),
    [
        ("final_val_acc", 0.93421, "93.42 %"),
        ("best_acc", 1.0, "100 %"),
        ("acc_std", 0.0123, "1.23 pp"),
        ("p_min", np.nan, "none"),
        ("p_min", 6538.0, "6,538"),
        ("seed", 2.0, "2"),
        ("lr", 0.003, "0.003"),
        ("interleaved", False, "no"),
        ("model", "mlp d1 w4", "mlp d1 w4"),
        ("d_mean", 0.271, "0.271 pp"),
        ("best_f", 93.34, "93.34 %"),
        ("r_mean", None, "none"),
    ],
)
def test_cells_carry_their_units(column, value, text):
    assert cell(column, value) == text


def test_whole_numbers_become_integers_and_real_floats_stay():
    frame = pd.DataFrame(
        {
            "seed": [0.0, 1.0, math.nan],
            "best_epoch": [3.0, math.nan, math.nan],
            "config.model.width": [4.0, math.nan, 32.0],
            "config.training.momentum": [0.9, 0.9, 0.9],
            "config.training.warmup_epochs": [0.0, 0.0, 0.0],
            "final_val_acc": [1.0, 0.0, math.nan],
        }
    )
    text = whole_numbers(frame).to_csv(index=False)
    assert text.splitlines()[1:] == ["0,3,4,0.9,0.0,1.0", "1,,,0.9,0.0,0.0", ",,32,0.9,0.0,"]


@pytest.mark.parametrize("table", ["minimal", "architectures", "runs"])
def test_compact_views_fit_80_columns_on_a_real_study(store, table):
    _, db = store
    frame = minarch.table(table, db=db, study="tiny")
    out = io.StringIO()
    print_analysis(Console(file=out, width=80), frame, table, wide=False)
    lines = out.getvalue().splitlines()
    assert lines[0].strip() == f"{table} · tiny · digits" and "row 1" not in lines[0]
    assert max(len(line) for line in lines) <= 80
    headers = set(re.split(r"\s{2,}", lines[2].strip()))
    assert set(TABLES[table].view.columns.values()) <= headers
    text = "\n".join(lines)
    assert "%" in text and "nan" not in text and "{" not in text and "…" not in text


def test_analyze_prints_a_compact_table_and_thresholds_as_a_table(store):
    folder, db = store
    result = minarch_cli(
        "analyze", "--db", db, "--study", "tiny", cwd=folder, env={"COLUMNS": "80"}
    )
    assert result.returncode == 0, result.stderr
    assert "minimal · tiny · digits" in result.stdout and "P_stable" in result.stdout
    assert "stability_q" in result.stdout and "{'" not in result.stdout
    assert "nan" not in result.stdout and "…" not in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    wide = minarch_cli("analyze", "--db", db, "--study", "tiny", "--wide", cwd=folder)
    assert "reached_fraction" in wide.stdout and "bootstrap_seed" in wide.stdout


def test_analyze_says_which_configurations_it_left_out_unfinished(store):
    """A study still running silently averaged 2 of 3 seeds; now it says what it left out."""
    folder, db = store
    result = minarch_cli("analyze", "--db", db, "--study", "more", cwd=folder)
    assert result.returncode == 0, result.stderr
    assert "more: 1 configuration with seeds not yet finished" in " ".join(result.stdout.split())
    frame = minarch.table("architectures", db=db, study="more")
    assert sorted(frame["params"].unique()) == sorted(
        minarch.table("architectures", db=db, study="tiny")["params"].unique()
    )


def test_the_minimal_table_flags_its_edges_in_every_format(store):
    """`analyze --table minimal` printed 6,538 where the report said ≥ 6,538."""
    folder, db = store
    frame = minarch.table("minimal", db=db, study="tiny")
    assert {
        "p_stable",
        "p_stable_edge",
        "p_min",
        "p_min_edge",
        "accuracy_bar",
        "bar_source",
    } <= set(frame.columns)
    (row,) = frame.itertuples()
    marks = {"lower": "≤ ", "upper": "≥ ", "not_reached": "not reached", "": ""}
    shown = minarch_cli("analyze", "--db", db, "--study", "tiny", cwd=folder).stdout
    assert (
        marks[row.p_min_edge] + ("" if row.p_min_edge == "not_reached" else f"{row.p_min:,.0f}")
        in shown
    )
    csv = minarch_cli("analyze", "--db", db, "--study", "tiny", "--format", "csv", cwd=folder)
    assert "p_min_edge" in csv.stdout.splitlines()[0]


def test_runs_csv_writes_integer_fields_as_integers(store):
    folder, db = store
    result = minarch_cli("runs", "--db", db, "--study", "more", cwd=folder)
    assert result.returncode == 0, result.stderr
    frame = pd.read_csv(io.StringIO(result.stdout), dtype=str, keep_default_na=False)
    assert set(frame["state"]) == {"done", "pending"}
    for column in ("seed", "params", "best_epoch", "env.threads"):
        assert not frame[column].str.contains(r"\.").any(), frame[column].tolist()
    assert set(frame["best_epoch"]) == {"3", ""}


WIDE = pd.DataFrame({f"column_{i}": [i, i + 1, i + 2] for i in range(12)})


def test_a_table_too_wide_for_a_terminal_prints_one_block_per_row():
    out = io.StringIO()
    print_frame(Console(file=out, width=60, force_terminal=True), WIDE, title="wide")
    assert "wide · row 3" in out.getvalue()


def test_piped_output_keeps_one_line_per_row_however_wide():
    out = io.StringIO()
    print_frame(Console(file=out, width=60), WIDE, title="wide")  # a pipe, not a terminal
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    assert "row 1" not in out.getvalue() and len(lines) == 1 + 2 + 3  # title, header, rule, rows
    assert max(len(line) for line in lines) > 60 and "…" not in out.getvalue()


def test_analyze_prints_the_claims_table(store):
    folder, db = store
    result = minarch_cli(
        "analyze", "--db", db, "--study", "tiny", "--table", "claims", cwd=folder,
        env={"COLUMNS": "200"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "claims · tiny" in result.stdout and "inconclusive" in result.stdout
    frame = minarch.table("claims", db=db, study="tiny")
    assert frame["claim"].tolist() == ["a", "b", "c-size", "c-difficulty", "d", "e"]
    assert set(frame["verdict"]) <= {"supported", "contradicted", "inconclusive"}
