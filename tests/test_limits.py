"""Hostile studies: refused in seconds with one line, before anything is expanded, built or stored.

Each would have eaten memory until killed (or ended in a traceback) when the
runs were expanded before being counted and models built before being sized.
"""

from __future__ import annotations

import pytest

from minarch.errors import ModelError, SpecError
from minarch.execute.planner import DEFAULT_MAX_RUNS, plan_study
from minarch.spec import parse_study
from minarch.store import open_store
from tests.cli import TINY_STUDY, error_lines, minarch

ONE_RUN = TINY_STUDY.replace("width: [4, 32]", "width: 4").replace("seeds: 2", "seeds: 1")


def alias_bomb() -> str:
    """Eight levels of ten aliases each: ``training.lr`` stands for 10**9 values."""
    anchors = ["&a0 [" + ", ".join(["0.1"] * 10) + "]"]
    anchors += [f"&a{k} [" + ", ".join([f"*a{k - 1}"] * 10) + "]" for k in range(1, 9)]
    text = ONE_RUN.replace("training:", f"description: [{', '.join(anchors)}]\ntraining:")
    return text.replace("lr: 0.01", "lr: [*a8]")


HOSTILE = {
    "seeds": (
        ONE_RUN.replace("seeds: 1", "seeds: 1000000000"),
        "the study has 1,000,000,000 runs, more than the limit of 100,000",
    ),
    "log10-step": (
        ONE_RUN.replace("lr: 0.01", "lr: {log10: {start: -3, stop: -1, step: 1.0e-9}}"),
        "the study has 2,000,000,000 runs",
    ),
    "width": (
        ONE_RUN.replace("width: 4", "width: 1000000000"),
        "mlp d1 w1000000000 on digits: more than 1,000,000,000 parameters",
    ),
    "depth": (
        ONE_RUN.replace("width: 4", "width: 4\n    depth: 1000000"),
        "mlp d1000000 w4 on digits: more than 10,000 parameter tensors",
    ),
    "lr-list": (
        ONE_RUN.replace("lr: 0.01", "lr: [" + "0.01, " * 5_000_000 + "0.01]"),
        "longer than a study file may be",
    ),
    "alias-bomb": (alias_bomb(), "more than 100,000 values once YAML aliases are expanded"),
}


def one_line_error(result, expected: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    lines = error_lines(result)
    assert len(lines) == 1 and expected in lines[0], result.stderr[-2000:]


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_study_is_refused_by_plan(case, tmp_path):
    text, expected = HOSTILE[case]
    (tmp_path / "hostile.yaml").write_text(text)
    one_line_error(minarch("plan", "hostile.yaml", cwd=tmp_path, timeout=120), expected)
    assert list(tmp_path.iterdir()) == [tmp_path / "hostile.yaml"]  # no store, no report


def test_hostile_study_is_refused_by_run_before_the_store_is_touched(tmp_path):
    text, expected = HOSTILE["seeds"]
    (tmp_path / "hostile.yaml").write_text(text)
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    result = minarch("run", "hostile.yaml", "--db", db, cwd=tmp_path, timeout=120)
    one_line_error(result, expected)
    assert not (tmp_path / "runs.db").exists()


def test_invalid_value_leaves_an_existing_store_unchanged(tmp_path):
    """``lr: .inf`` used to pass the plan and end as a failed run named by its hash."""
    db = tmp_path / "runs.db"
    open_store(f"sqlite:///{db}").close()
    before = db.read_bytes()
    (tmp_path / "bad.yaml").write_text(ONE_RUN.replace("lr: 0.01", "lr: .inf"))
    result = minarch("run", "bad.yaml", "--db", f"sqlite:///{db}", cwd=tmp_path, timeout=120)
    one_line_error(result, "bad.yaml: training.lr: expected a finite number, got inf")
    assert db.read_bytes() == before


def test_max_runs_bounds_the_plan():
    study = parse_study(TINY_STUDY)  # 2 widths x 2 seeds
    assert DEFAULT_MAX_RUNS == 100_000
    assert len(plan_study(study, TINY_STUDY, max_runs=4).runs) == 4
    with pytest.raises(SpecError, match="^the study has 4 runs, more than the limit of 3 "):
        plan_study(study, TINY_STUDY, max_runs=3)
    with pytest.raises(SpecError, match="has 8 runs"):  # grid extensions count too
        plan_study(study, TINY_STUDY, extra_lr=[0.1], max_runs=5)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("width: 4", "width: 100000000"), "more than 1,000,000,000 parameters"),
        (("width: 4", "width: 4\n    depth: 20000"), "more than 10,000 parameter tensors"),
    ],
)
def test_oversized_models_are_refused_before_they_are_built(change, expected):
    text = ONE_RUN.replace(*change)
    with pytest.raises(ModelError, match=expected):
        plan_study(parse_study(text), text)


def test_large_models_below_the_limits_still_plan():
    text = ONE_RUN.replace("width: 4", "width: 4\n    depth: 4000")  # 8,002 tensors
    (run,) = plan_study(parse_study(text), text).runs
    assert run.params == 64 * 4 + 4 + 3999 * 20 + 4 * 10 + 10
