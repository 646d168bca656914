"""The CLI end to end, as a user runs it: success paths, and bad input exiting 2."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from minarch.store import open_store
from tests.cli import RUN_OPENING, TINY_STUDY, error_lines, minarch
from tests.tiny_store import tiny_store

VERBS = [
    ["analyze"],
    ["bench"],
    ["run"],
    ["plan"],
    ["status"],
    ["runs"],
    ["epochs"],
    ["families"],
    ["report"],
    ["rm"],
    ["compression"],
    ["datasets"],
    ["datasets", "list"],
    ["datasets", "check"],
]


@pytest.mark.parametrize("verb", VERBS, ids=" ".join)
def test_every_verb_has_help(verb, tmp_path):
    result = minarch(*verb, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout


def test_plan_sizes_a_sweep_without_training(tmp_path):
    result = minarch("plan", "quickstart", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "90 runs in 30 packs, 0 done" in result.stdout
    assert not (tmp_path / "minarch.db").exists()


def test_plan_defaults_to_the_quickstart_as_run_does(tmp_path):
    result = minarch("plan", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "study quickstart" in result.stdout and "90 runs in 30 packs" in result.stdout


def test_plan_time_on_a_finished_study_has_nothing_left(tmp_path):
    db = tiny_store(tmp_path)
    result = minarch("plan", "tiny.yaml", "--time", "--device", "cpu", "--db", db, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "4 runs in 2 packs, 4 done" in result.stdout
    assert "nothing left to train: training time 0 s" in result.stdout
    assert "timing packs" not in result.stderr  # nothing was timed


def test_epochs_prints_the_curves(tmp_path):
    db = tiny_store(tmp_path)
    result = minarch("epochs", "--db", db, "--study", "tiny", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    curves = pd.read_csv(io.StringIO(result.stdout))
    assert len(curves) == 4 * 3 and {"run_id", "epoch", "val_acc"} <= set(curves.columns)


@pytest.mark.parametrize(
    "study", sorted((Path(__file__).parent.parent / "studies").glob("*.yaml")), ids=lambda p: p.stem
)
def test_every_example_study_plans(study):
    result = minarch("plan", str(study.resolve()), cwd=study.parent)
    assert result.returncode == 0, result.stderr
    assert " runs in " in result.stdout


@pytest.mark.slow
@pytest.mark.long(35)
def test_run_status_runs_report_and_resume(tmp_path):
    """One study trained by the CLI, read by every verb: ``run --no-report`` trains only,
    ``report`` writes the report later, a second ``run`` trains nothing and names it."""
    (tmp_path / "tiny.yaml").write_text(TINY_STUDY)
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    train = ("--device", "cpu", "--workers", "1", "--no-report")  # no worker processes to start
    first = minarch("run", "tiny.yaml", "--db", db, *train, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "trained 4 done in" in first.stderr  # all by this driver
    assert "report:" not in first.stdout and not (tmp_path / "minarch-reports").exists()
    written = minarch("report", "--study", "tiny", "--db", db, cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    report = tmp_path / "minarch-reports" / "tiny" / "report.html"
    assert report.is_file()

    status = minarch("status", "--db", db, cwd=tmp_path)
    assert status.returncode == 0 and "tiny" in status.stdout

    table = pd.read_csv(io.StringIO(minarch("runs", "--db", db, cwd=tmp_path).stdout))
    assert len(table) == 4 and set(table["state"]) == {"done"}
    assert {"params", "flops", "final_val_acc", "best_val_acc", "config.model.width"} <= set(table)
    assert table["best_val_acc"].between(0, 1).all()
    rows = json.loads(minarch("runs", "--db", db, "--format", "json", cwd=tmp_path).stdout)
    assert len(rows) == 4
    parquet = tmp_path / "runs.parquet"
    assert (
        minarch(
            "runs", "--db", db, "--format", "parquet", "-o", str(parquet), cwd=tmp_path
        ).returncode
        == 0
    )
    assert len(pd.read_parquet(parquet)) == 4

    analysis = minarch("analyze", "--db", db, "--table", "runs", "--format", "csv", cwd=tmp_path)
    regimes = pd.read_csv(io.StringIO(analysis.stdout))
    assert len(regimes) == 4 and {"study", "regime", "rule"} <= set(regimes)
    human = minarch("analyze", "--db", db, cwd=tmp_path)
    assert human.returncode == 0 and "thresholds" in human.stdout
    piped = minarch(
        "analyze", "--db", db, "--table", "runs", "--wide", cwd=tmp_path, env={"COLUMNS": "70"}
    )
    assert "row 1" not in piped.stdout and "…" not in piped.stdout  # one whole line per run
    assert len([line for line in piped.stdout.splitlines() if "mlp d1 w" in line]) == 4

    again = minarch("run", "tiny.yaml", "--db", db, "--device", "cpu", cwd=tmp_path)
    assert again.returncode == 0 and "trained nothing" in again.stderr
    assert f"report: {report.relative_to(tmp_path)}" in again.stdout

    out = tmp_path / "elsewhere"
    rep = minarch("report", "--db", db, "--study", "tiny", "--out", str(out), cwd=tmp_path)
    assert rep.returncode == 0 and (out / "tiny" / "report.html").is_file()


def _corrupt_mnist(folder: Path, *, truncate: bool) -> Path:
    """A data dir whose MNIST train images are truncated or simply wrong."""
    mnist = folder / "mnist"
    mnist.mkdir(parents=True)
    payload = gzip.compress(b"\x00\x00\x08\x03" + b"\x00" * 64)
    for name in (
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ):
        (mnist / name).write_bytes(payload[: len(payload) // 2] if truncate else payload)
    return folder


BAD_STUDIES = {
    "malformed-yaml": ("name: [oops\n", "invalid YAML at line"),
    "unknown-family": (TINY_STUDY.replace("family: mlp", "family: mlpp"), "models[0].family"),
    "unknown-dataset": (TINY_STUDY.replace("[digits]", "[digitz]"), "datasets[0]: unknown dataset"),
    "wrong-type": (
        TINY_STUDY.replace("epochs: 3", "epochs: three"),
        "training.epochs: expected an integer",
    ),
    "empty-grid": (
        TINY_STUDY.replace("width: [4, 32]", "width: []"),
        "models[0].width: empty grid",
    ),
    "negative-size": (
        TINY_STUDY.replace("width: [4, 32]", "width: [4, -4]"),
        "models[0].width: expected a number > 0, got -4",
    ),
}


def _assert_user_error(result, expected: str, db_file: Path) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    assert expected in result.stderr, result.stderr
    assert len(error_lines(result)) == 1, result.stderr
    if db_file.exists():  # opened, maybe, but nothing registered
        store = open_store(f"sqlite:///{db_file}")
        assert store.studies() == []
        store.close()


@pytest.mark.parametrize("case", sorted(BAD_STUDIES))
def test_bad_study_files_exit_2_and_leave_the_store_alone(case, tmp_path):
    text, expected = BAD_STUDIES[case]
    (tmp_path / "bad.yaml").write_text(text)
    db = tmp_path / "runs.db"
    result = minarch("run", "bad.yaml", "--db", f"sqlite:///{db}", cwd=tmp_path)
    _assert_user_error(result, expected, db)


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("missing", "mnist"),
        ("truncated", "train-images-idx3-ubyte.gz"),
        ("mismatch", "train-images-idx3-ubyte.gz"),
    ],
)
def test_bad_data_exits_2_and_leaves_the_store_alone(setup, expected, tmp_path):
    data = tmp_path / "data"
    if setup == "missing":
        data.mkdir()
    else:
        _corrupt_mnist(data, truncate=setup == "truncated")
    (tmp_path / "s.yaml").write_text(TINY_STUDY.replace("[digits]", "[mnist]"))
    db = tmp_path / "runs.db"
    result = minarch(
        "run",
        "s.yaml",
        "--db",
        f"sqlite:///{db}",
        "--data-dir",
        str(data),
        "--no-download",
        cwd=tmp_path,
    )
    _assert_user_error(result, expected, db)


def test_unwritable_out_exits_2(tmp_path):
    (tmp_path / "tiny.yaml").write_text(TINY_STUDY)
    (tmp_path / "a-file").write_text("not a folder")
    db = tmp_path / "runs.db"
    result = minarch(
        "run",
        "tiny.yaml",
        "--db",
        f"sqlite:///{db}",
        "--out",
        str(tmp_path / "a-file" / "reports"),
        cwd=tmp_path,
    )
    _assert_user_error(result, "--out", db)
    assert not db.exists()


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:////nonexistent-folder/sub/runs.db",
        "postgresql+psycopg://nobody:secret@127.0.0.1:9/db",
    ],
)
def test_unreachable_db_exits_2(url, tmp_path):
    (tmp_path / "tiny.yaml").write_text(TINY_STUDY)
    result = minarch("run", "tiny.yaml", "--db", url, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert len(error_lines(result)) == 1
    assert "secret" not in result.stderr


def test_unknown_study_in_runs_exits_2(tmp_path):
    open_store(f"sqlite:///{tmp_path / 'x.db'}").close()  # a store, without that study
    result = minarch(
        "runs", "--db", f"sqlite:///{tmp_path / 'x.db'}", "--study", "nope", cwd=tmp_path
    )
    assert result.returncode == 2 and "--study nope" in result.stderr


def test_parquet_needs_an_output_file(tmp_path):
    result = minarch(
        "runs", "--db", f"sqlite:///{tmp_path / 'x.db'}", "--format", "parquet", cwd=tmp_path
    )
    assert result.returncode == 2 and "--output" in result.stderr


def test_datasets_check_reads_the_real_data_dir(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    result = minarch("datasets", "check", "--data-dir", str(data), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "mnist" in result.stdout and "missing" in result.stdout


def test_datasets_list_names_the_default_data_folder(tmp_path):
    env = {"XDG_CACHE_HOME": str(tmp_path), "COLUMNS": "300"}
    result = minarch("datasets", "list", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert f"data folder: {tmp_path / 'minarch' / 'datasets'}" in result.stdout


def test_bench_prints_json_with_the_documented_keys(tmp_path):
    result = minarch(
        "bench", "--quick", "--workload", "mlp-grid", "--device", "cpu", "--json", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)
    keys = {
        "workload",
        "members",
        "baseline_samples_per_s",
        "minarch_samples_per_s",
        "speedup",
        "peak_fraction",
    }
    assert keys <= set(row) and row["workload"] == "mlp-grid" and row["speedup"] > 0
    bad = minarch("bench", "--workload", "nope", cwd=tmp_path)
    assert bad.returncode == 2 and "valid workloads" in bad.stderr


def test_version_and_short_help(tmp_path):
    version = minarch("--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("minarch ")
    short = minarch("-h", cwd=tmp_path)
    assert short.returncode == 0 and "Usage" in short.stdout


def test_read_only_commands_do_not_import_torch(tmp_path):
    """status and runs answer without loading torch (about 2 s of import on a laptop)."""
    db = f"sqlite:///{tmp_path / 'r.db'}"
    open_store(db).close()
    code = (
        "import sys\n"
        "from minarch.cli import main\n"
        f"for argv in (['status', '--db', '{db}'], ['runs', '--db', '{db}']):\n"
        "    sys.argv = ['minarch', *argv]\n"
        "    try:\n"
        "        main()\n"
        "    except SystemExit as exc:\n"
        "        assert not exc.code, exc.code\n"
        "print('torch' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("False")


def test_max_runs_bounds_plan_and_run(tmp_path):
    refused = minarch("plan", "quickstart", "--max-runs", "10", cwd=tmp_path)
    assert refused.returncode == 2 and "90 runs, more than the limit of 10" in refused.stderr
    db = f"sqlite:///{tmp_path / 'r.db'}"
    refused = minarch("run", "quickstart", "--max-runs", "10", "--db", db, cwd=tmp_path)
    assert refused.returncode == 2 and not (tmp_path / "r.db").exists()
    assert minarch("plan", "quickstart", "--max-runs", "90", cwd=tmp_path).returncode == 0


READ_ONLY = [
    ["status"],
    ["runs"],
    ["analyze"],
    ["analyze", "--table", "risk"],
    ["compression"],
    ["report"],
]


@pytest.mark.parametrize("verb", READ_ONLY, ids=" ".join)
def test_read_only_verbs_on_a_missing_store_say_so_and_create_nothing(verb, tmp_path):
    result = minarch(*verb, cwd=tmp_path)  # the default store, ./minarch.db
    assert result.returncode == 2, result.stderr
    assert f"no run store at {tmp_path / 'minarch.db'}" in result.stderr
    assert len(error_lines(result)) == 1, result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_missing_store_named_by_url_is_not_created(tmp_path):
    result = minarch("runs", "--db", f"sqlite:///{tmp_path / 'runs.db'}", cwd=tmp_path)
    assert result.returncode == 2 and "no run store at" in result.stderr
    assert not (tmp_path / "runs.db").exists()


@pytest.mark.parametrize(
    ("verb", "expected"),
    [
        (["compression"], "study 'tiny' has no compression results"),
        (["analyze", "--table", "risk"], "study 'tiny' has no hyperparameter-space runs"),
        (["analyze", "--table", "redundancy"], "study 'tiny' has no pruning results"),
        (["analyze"], "study 'tiny' has no finished runs yet"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else "",
)
def test_an_absent_analysis_exits_2_in_one_line(verb, expected, tmp_path):
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    with open_store(db) as store:
        store.register_study("tiny", TINY_STUDY, [])
    result = minarch(*verb, "--db", db, "--study", "tiny", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr and len(error_lines(result)) == 1
    assert result.stdout == ""


def test_run_speaks_before_it_imports_torch(tmp_path):
    """The first line comes before PyTorch is imported (which takes seconds, more under load)."""
    watch = (
        "import sys\n"
        "class Watch:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch':\n"
        "            sys.stderr.write('<torch imported>\\n')\n"
        "            sys.meta_path.remove(self)\n"
        "sys.meta_path.insert(0, Watch())\n"
        "from minarch.cli import main\n"
        "sys.argv = ['minarch', 'run', 'quickstart', '--workers', '0']\n"
        "main()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", watch], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 2  # --workers 0, refused once PyTorch placed the packs
    lines = result.stderr.splitlines()
    assert lines[0] == f"study quickstart: {RUN_OPENING}" and "<torch imported>" in lines


# --- one line, not a traceback, wherever a file cannot be written -------------------------


@pytest.mark.parametrize(
    ("verb", "where", "expected"),
    [
        ("runs", "missing/x.csv", "does not exist"),
        ("runs", ".", "is a folder"),
        ("runs", "/proc/minarch-x.csv", "cannot write"),  # a file system taking no new files
        ("compression", "missing/x.csv", "does not exist"),
        ("compression", ".", "is a folder"),
    ],
)
def test_an_unwritable_output_is_one_line(verb, where, expected, tmp_path):
    db = f"sqlite:///{tmp_path / 'x.db'}"
    with open_store(db) as store:
        store.register_study("s", "name: s\n", [])
    result = minarch(verb, "--db", db, "-o", where, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_folder_whose_check_is_refused_is_one_line(tmp_path, monkeypatch):
    from minarch.errors import MinarchError
    from minarch.execute import writable_dir

    def refused(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "exists", refused)
    with pytest.raises(MinarchError, match="out=.*: cannot write there"):
        writable_dir(tmp_path / "reports", "out")


def test_a_plugin_model_whose_forward_raises_is_one_line_at_plan(tmp_path):
    (tmp_path / "broken_family.py").write_text(
        "from pydantic import BaseModel, ConfigDict\n"
        "from torch import nn\n"
        "from minarch.models.registry import Example, register\n"
        "class Config(BaseModel):\n"
        "    model_config = ConfigDict(frozen=True)\n"
        "    width: int\n"
        "class Broken(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.layer = nn.Linear(2, 2)\n"
        "    def forward(self, x):\n"
        "        raise RuntimeError('shapes do not fit\\nsecond line')\n"
        "register('broken', Config, lambda c, s, n: Broken(), lambda c: f'broken {c.width}',\n"
        "         example=Example(Config(width=1), (1, 8, 8)))\n"
    )
    (tmp_path / "s.yaml").write_text(TINY_STUDY.replace("family: mlp", "family: broken"))
    env = {"PYTHONPATH": f"{tmp_path}:{__import__('os').environ.get('PYTHONPATH', '')}"}
    result = minarch("--plugin", "broken_family", "plan", "s.yaml", cwd=tmp_path, env=env)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "broken 4 on digits: its forward pass" in result.stderr
    assert "RuntimeError: shapes do not fit" in result.stderr


def test_an_in_memory_store_is_refused(tmp_path):
    (tmp_path / "tiny.yaml").write_text(TINY_STUDY)
    result = minarch("run", "tiny.yaml", "--db", "sqlite://", cwd=tmp_path)
    assert result.returncode == 2 and "in-memory store keeps nothing" in result.stderr
    assert len(error_lines(result)) == 1


def test_missing_data_makes_no_store_and_no_folders(tmp_path):
    (tmp_path / "s.yaml").write_text(TINY_STUDY.replace("[digits]", "[mnist]"))
    (tmp_path / "data").mkdir()
    args = ("run", "s.yaml", "--db", "sqlite:///runs.db", "--data-dir", "data", "--no-download")
    result = minarch(*args, cwd=tmp_path)
    assert result.returncode == 2 and "mnist" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "s.yaml"]
