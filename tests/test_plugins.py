"""Plugins: a model family and a dataset from another package, through the CLI.

The package is ``tests/plugin_pkg``; ``.ci/run`` installs it with pip into
``<venv>/minarch-test-plugin``, off the suite's own path, so the registry-wide
tests here keep seeing minarch's own families and datasets. The plugin is only
ever imported in subprocesses.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.cli import error_lines, minarch

PACKAGE = Path(__file__).parent / "plugin_pkg"
INSTALLED = Path(sys.prefix) / "minarch-test-plugin"
"""Where ``.ci/run`` installs the test plugin (with its entry point)."""
STUDY = """
name: plugged
datasets: [plugin-blobs]
models: [{family: plugin_mlp, hidden: [4, 16]}]
training: {optimizer: adamw, lr: 0.01, epochs: 2, batch_size: 64}
seeds: 1
"""


def _path(*folders: Path) -> dict[str, str]:
    """An environment whose Python also imports from ``folders``."""
    return {"PYTHONPATH": os.pathsep.join([*map(str, folders), os.environ.get("PYTHONPATH", "")])}


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """The plugin's module alone: installing tests/plugin_pkg leaves build metadata
    (an egg-info with the entry point) beside it, which would load it unasked."""
    folder = tmp_path_factory.mktemp("plugin-source")
    shutil.copytree(PACKAGE / "minarch_test_plugin", folder / "minarch_test_plugin")
    return folder


@pytest.fixture
def study(tmp_path) -> Path:
    (tmp_path / "plugged.yaml").write_text(STUDY)
    return tmp_path


@pytest.mark.long(40)
def test_the_plugin_option_registers_a_family_and_a_dataset_for_training(study, source):
    env = _path(source)
    listed = minarch("--plugin", "minarch_test_plugin", "datasets", "list", cwd=study, env=env)
    assert listed.returncode == 0, listed.stderr
    assert "plugin-blobs" in listed.stdout
    db = f"sqlite:///{study / 'runs.db'}"
    args = ("run", "plugged.yaml", "--db", db, "--device", "cpu", "--workers", "2", "--no-report")
    trained = minarch("--plugin", "minarch_test_plugin", *args, cwd=study, env=env)
    assert trained.returncode == 0, trained.stderr
    assert "trained 2 done in" in trained.stderr  # by its workers, each importing the plugin
    plain = minarch("plan", "plugged.yaml", cwd=study, env=env)  # no plugin named: unknown
    assert plain.returncode == 2 and "unknown dataset 'plugin-blobs'" in plain.stderr


def test_the_environment_names_plugins_too(study, source):
    env = {**_path(source), "MINARCH_PLUGINS": "minarch_test_plugin"}
    result = minarch("plan", "plugged.yaml", cwd=study, env=env)
    assert result.returncode == 0, result.stderr
    assert "2 runs in 2 packs" in result.stdout and "plugin_mlp" in result.stdout


def test_an_installed_plugin_is_found_by_its_entry_point(study, source, tmp_path):
    """As installed by .ci/run; without it, the same distribution metadata written here."""
    folders = [INSTALLED]
    if not INSTALLED.is_dir():
        info = tmp_path / "site" / "minarch_test_plugin-0.1.0.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(
            "Metadata-Version: 2.1\nName: minarch-test-plugin\nVersion: 0.1.0\n"
        )
        (info / "entry_points.txt").write_text(
            "[minarch.plugins]\ntest-plugin = minarch_test_plugin\n"
        )
        folders = [info.parent, source]
    result = minarch("plan", "plugged.yaml", cwd=study, env=_path(*folders))
    assert result.returncode == 0, result.stderr
    assert "plugin_mlp" in result.stdout


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("", "plugin no_such_plugin (named by --plugin or $MINARCH_PLUGINS) failed to import: "
         "ModuleNotFoundError: No module named 'no_such_plugin'"),
        ("raise RuntimeError('boom')\n", "plugin no_such_plugin (named by --plugin or "
         "$MINARCH_PLUGINS) failed to import: RuntimeError: boom"),
    ],
    ids=["missing", "raises"],
)  # fmt: skip
def test_a_plugin_that_fails_to_import_is_one_line_naming_it(study, source, expected):
    if source:
        (study / "no_such_plugin.py").write_text(source)
    result = minarch(
        "--plugin", "no_such_plugin", "plan", "plugged.yaml", cwd=study, env=_path(study)
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert expected in result.stderr and len(error_lines(result)) == 1
