"""Open an HTML file in headless Chromium, offline, and check that its JavaScript ran.

Shared by the report tests and end-to-end CLI tests:
``from tests.browser import assert_renders_without_console_errors, requires_chromium``.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("BROWSER_PATH", "/usr/bin/chromium"))
requires_chromium = pytest.mark.skipif(
    not CHROMIUM.is_file(), reason=f"no Chromium at {CHROMIUM} (apt install chromium)"
)

_FLAGS = (
    "--headless",
    "--no-sandbox",  # needed as root, harmless otherwise
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=1",
    "--virtual-time-budget=5000",
)


def assert_renders_without_console_errors(
    html: Path, *, min_plots: int = 1, timeout: float = 120
) -> str:
    """Fail unless the page logs nothing to the console and draws ``min_plots`` plots.

    Chromium's log line for a console message does not carry its level, so every
    console message counts: a report is expected to log nothing. Drawn plots are
    counted by plotly's ``plot-container`` divs, which only its JavaScript
    creates, so a pass proves the inlined plotly.js ran without a network.
    Returns the DOM after the scripts ran.
    """
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [str(CHROMIUM), *_FLAGS, f"--user-data-dir={profile}", "--dump-dom"]
            + [Path(html).resolve().as_uri()],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    assert done.returncode == 0, f"chromium exited {done.returncode}:\n{done.stderr[-3000:]}"
    console = [ln for ln in done.stderr.splitlines() if ":CONSOLE" in ln or "Uncaught" in ln]
    assert not console, "console messages:\n" + "\n".join(console)
    plots = done.stdout.count('class="plot-container plotly"')
    assert 'class="main-svg"' in done.stdout and plots >= min_plots, (
        f"{plots} plotly plots rendered, expected at least {min_plots}"
    )
    return done.stdout
