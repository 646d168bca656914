"""The README's main job: ``minarch run`` on the built-in quickstart, opened in a browser."""

from __future__ import annotations

import pytest

from minarch.store import open_store
from tests.browser import assert_renders_without_console_errors, requires_chromium
from tests.cli import minarch


@pytest.mark.slow
@pytest.mark.long(150)
@requires_chromium
def test_quickstart_runs_and_its_report_renders_offline(tmp_path):
    env = {"MINARCH_DATA_DIR": str(tmp_path / "data")}
    result = minarch("run", cwd=tmp_path, env=env, timeout=2400)
    assert result.returncode == 0, result.stderr[-2000:]
    with open_store(f"sqlite:///{tmp_path / 'minarch.db'}") as store:
        status = store.status().set_index("study").loc["quickstart"]
    assert status["done"] + status["diverged"] == status["total"] > 0

    folder = tmp_path / "minarch-reports" / "quickstart"
    dom = assert_renders_without_console_errors(folder / "report.html", min_plots=6)
    assert "digits" in dom and "mnist1d" in dom
    pngs = sorted((folder / "figures").glob("*.png"))
    assert len(pngs) >= 6 and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
