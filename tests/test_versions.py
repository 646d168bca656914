"""Which code trained each run: the version names the git revision; mixed stores say so."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

import minarch
from minarch import cli
from minarch.store import open_store
from minarch.store.schema import meta_table
from tests.cli import TINY_STUDY
from tests.test_store import make_run

ROOT = Path(__file__).parent.parent


@pytest.fixture
def mixed(tmp_path) -> str:
    """The tiny study, two of its runs as an older minarch recorded them."""
    (tmp_path / "tiny.yaml").write_text(TINY_STUDY)
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    quiet = Console(quiet=True)
    minarch.run(tmp_path / "tiny.yaml", db=db, device="cpu", workers=1, report=False, console=quiet)
    engine = create_engine(db)
    with engine.begin() as conn:
        conn.execute(
            text(
                'UPDATE runs SET environment = \'{"minarch": "0.1.0"}\' '
                "WHERE id IN (SELECT id FROM runs ORDER BY seq LIMIT 2)"
            )
        )
    engine.dispose()
    return db


def test_status_and_report_say_a_store_mixes_versions(mixed, tmp_path):
    assert list(minarch.status(db=mixed)["versions"]) == [2]
    shown = CliRunner().invoke(cli.app, ["status", "--db", mixed])
    assert "study tiny: its runs were trained by 2 versions of minarch" in shown.output
    (report,) = minarch.report(db=mixed, out=tmp_path / "reports")
    page = report.read_text()
    assert "Mixed versions: 2 versions of minarch trained these runs" in page
    assert "0.1.0: 2 runs" in page


def test_legacy_option_b_resnet_runs_are_told_apart_from_option_a(tmp_path):
    """Runs stored before option A named no shortcut and shared option A's label."""
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    legacy = dataclasses.replace(
        make_run(0),
        family="resnet_cifar",
        model="resnet_cifar 8 ×1",
        config={"model": {"family": "resnet_cifar", "depth": 8, "width_multiplier": 1.0}},
    )
    with open_store(url) as store:
        store.register_study("alpha", "name: alpha\n", [legacy])
    engine = create_engine(url)
    with engine.begin() as conn:  # as that minarch left the store
        conn.execute(meta_table.delete().where(meta_table.c.key == "store_id"))
    engine.dispose()
    with open_store(url) as store:
        (run,) = store.runs()
    assert run.model == "resnet_cifar 8 ×1 shortcut-B"
    assert run.config["model"]["shortcut"] == "B"
    planned = minarch.plan(
        "quickstart", overrides=["models=[{family: resnet_cifar, depth: 8}]", "datasets=[cifar10]"]
    ).runs[0]
    assert planned.label == "resnet_cifar 8 ×1" != run.model


@pytest.mark.slow
@pytest.mark.parametrize("source", ["clone", "archive"])
def test_an_install_names_its_revision_and_one_without_git_still_works(source, tmp_path):
    """As CI installs (a fresh clone) and as an archive of the source installs."""
    revision = subprocess.run(
        ["git", "rev-parse", "--short=7", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    if revision.returncode:
        pytest.skip("not a git checkout")
    tree = tmp_path / "tree"
    if source == "clone":
        subprocess.run(["git", "clone", "-q", str(ROOT), str(tree)], check=True)
    else:
        tree.mkdir()
        archive = subprocess.run(["git", "archive", "HEAD"], cwd=ROOT, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    target = tmp_path / "installed"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", target, tree],
        check=True,
    )
    (info,) = target.glob("minarch-*.dist-info")
    version = info.name.removeprefix("minarch-").removesuffix(".dist-info")
    if source == "clone":
        assert f"+g{revision.stdout.strip()}" in version
    else:
        assert version == "0.1.0"
