"""Size-grid extension (``extend: true`` on a models entry): decisions, planning, a real run."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from rich.console import Console

import minarch
from minarch.analysis import size_directions
from minarch.errors import SpecError
from minarch.spec import expand, parse_study
from minarch.spec.count import count_runs
from minarch.spec.sizes import extended_fields, next_sizes
from minarch.store import open_store
from tests.cli import TINY_STUDY
from tests.cli import minarch as minarch_cli


def minimal(*rows: tuple[str, str, str, str]) -> pd.DataFrame:
    """A minimal table with only what the decision reads: (dataset, family, edges)."""
    return pd.DataFrame(rows, columns=["dataset", "family", "p_stable_edge", "p_min_edge"])


def test_lower_edges_grow_down_upper_and_unreached_grow_up_bracketed_stay():
    table = minimal(
        ("digits", "mlp", "", "lower"),
        ("mnist1d", "mlp", "", "not_reached"),
        ("digits", "cnn", "upper", ""),
        ("digits", "vit", "", ""),
    )
    assert size_directions(table) == {"mlp": {"down", "up"}, "cnn": {"up"}}
    assert size_directions(minimal(("digits", "mlp", "", ""))) == {}


def study(*entries: dict, **extra) -> dict:
    return {"name": "s", "datasets": ["digits"], "models": list(entries), **extra}


def parsed(raw: dict):
    return parse_study(yaml.safe_dump(raw), "s.yaml")


MLP = {"family": "mlp", "depth": 1, "width": [4, 8], "extend": True, "max_extensions": 2}


def test_next_sizes_halve_the_smallest_and_double_the_largest_until_the_budget_is_spent():
    spec = parsed(study(MLP, {"family": "mlp", "width": [4, 8]}))  # the second is not extended
    both = {"mlp": {"down", "up"}}
    assert next_sizes(spec, {}, both, 0) == {(0, "width"): (2, 16)}
    assert next_sizes(spec, {(0, "width"): (2, 16)}, both, 1) == {(0, "width"): (1, 32)}
    assert next_sizes(spec, {(0, "width"): (2, 16)}, both, 2) == {}  # max_extensions: 2
    # a width of 0 does not exist: that end is as far as it goes
    assert next_sizes(spec, {(0, "width"): (1,)}, {"mlp": {"down"}}, 1) == {}


def test_a_size_the_family_cannot_build_is_not_proposed():
    spec = parsed(study({"family": "vit", "dim": 6, "heads": 2, "extend": True}))
    assert next_sizes(spec, {}, {"vit": {"down"}}, 0) == {}  # 2 heads do not divide a dim of 3
    assert next_sizes(spec, {}, {"vit": {"up"}}, 0) == {(0, "dim"): (12,)}


def test_depth_grows_only_where_the_entry_sweeps_it():
    assert extended_fields({"family": "mlp", "depth": [1, 2], "width": 16}) == ("depth",)
    assert extended_fields({"family": "cnn", "depth": 2, "channels": 8}) == ("channels",)
    assert extended_fields({"family": "vit", "dim": [4, 8], "depth": [1, 2]}) == ("dim", "depth")


def test_extra_sizes_are_ordinary_runs_counted_as_expanded():
    spec = parsed(study(MLP, seeds=2))
    plain = expand(spec)
    extended = expand(spec, extra_sizes={(0, "width"): (2, 16)})
    assert {r.model.config.width for r in extended} == {2, 4, 8, 16}
    assert {r.id for r in plain} < {r.id for r in extended}  # the old runs keep their ids
    assert count_runs(spec, extra_sizes={(0, "width"): 2}) == len(extended)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"family": "resnet50", "extend": True}, "models[0].extend: family resnet50 has a fixed"),
        ({"family": "mlp", "width": 4, "extend": "yes"}, "models[0].extend: expected true or"),
        ({"family": "mlp", "width": 4, "max_extensions": -1}, "models[0].max_extensions: "),
    ],
)
def test_bad_extension_keys_are_refused_naming_the_field(entry, message):
    with pytest.raises(SpecError, match=message.replace("[", r"\[").replace("]", r"\]")):
        expand(parsed(study(entry)))


def test_plan_says_what_an_extension_can_add_and_refuses_a_fixed_size_family(tmp_path):
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(study(MLP, seeds=2)))
    shown = minarch_cli("plan", "s.yaml", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    # 2 widths -> up to 2 + 2 x 2 rounds x 2 directions = 6 widths: 8 more runs over 2 seeds
    assert "extensions (grid, sizes) can add at most 8 runs" in shown.stdout
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(study({"family": "resnet50", "extend": 1})))
    refused = minarch_cli("plan", "bad.yaml", cwd=tmp_path)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert "models[0].extend" in refused.stderr


@pytest.mark.slow
def test_a_run_extends_an_unbracketed_size_and_a_rerun_trains_nothing(tmp_path):
    """One width tested: P_min sits at an end, so a halved or doubled width is trained."""
    text = TINY_STUDY.replace("width: [4, 32]", "width: 8\n    extend: true\n    max_extensions: 1")
    (tmp_path / "s.yaml").write_text(text + "analysis: {bootstrap: 0}\n")
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    quiet = Console(quiet=True)
    options = {"device": "cpu", "workers": 1, "report": False}  # no worker processes to start
    first = minarch.run(tmp_path / "s.yaml", db=db, console=quiet, **options)
    with open_store(db, read_only=True) as store:
        runs = store.runs_frame(study="tiny")
    assert first.summary.trained == {"done": 4} and len(runs) == 4
    assert set(runs["model"]) in ({"mlp d1 w8", "mlp d1 w4"}, {"mlp d1 w8", "mlp d1 w16"})
    again = minarch.run(tmp_path / "s.yaml", db=db, console=quiet, **options)
    assert again.summary.trained == {}
