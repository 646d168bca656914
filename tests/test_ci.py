"""What a fresh clone sees: real-data tests skip with one reason that says how to get the files.

``.ci/run`` itself runs the fast tests in a fresh clone without a data folder;
this checks the skip and its message in one real-data test file.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REAL_DATA_REASON

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("data_dir", [None, "empty"])
def test_real_data_tests_skip_with_how_to_get_the_files(data_dir, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MINARCH_DATA_DIR"}
    if data_dir:
        env["MINARCH_DATA_DIR"] = str(tmp_path)  # set, but without the files
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/test_prune_real.py",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert " passed" not in result.stdout and " error" not in result.stdout
    assert "skipped tests" in result.stdout  # the list of skipped tests, by name
    assert "test_prune_real.py::" in result.stdout
    assert REAL_DATA_REASON in result.stdout
    assert "MINARCH_DATA_DIR" in REAL_DATA_REASON and "minarch datasets check" in REAL_DATA_REASON
