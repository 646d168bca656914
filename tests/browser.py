"""Open an HTML file in headless Chromium, offline, and check that its JavaScript ran.

Shared by the report tests and end-to-end CLI tests:
``from tests.browser import assert_renders_without_console_errors, requires_chromium``.
"""

from __future__ import annotations

import json
import os
import re
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


def boxes(figure, selector: str, *, width: int = 900, height: int = 500) -> list[list[float]]:
    """The bounding boxes (left, top, right, bottom, in pixels) of ``selector``'s elements,
    as headless Chromium draws ``figure`` (a plotly figure) at ``width`` × ``height``."""
    measure = (
        f"var found = document.querySelectorAll({json.dumps(selector)});"
        "var pre = document.createElement('pre'); pre.id = 'boxes';"
        "pre.textContent = JSON.stringify(Array.from(found, function (e) {"
        " var r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; }));"
        "document.body.appendChild(pre);"
    )
    with tempfile.TemporaryDirectory() as folder:
        html = Path(folder) / "figure.html"
        figure.write_html(
            html,
            include_plotlyjs=True,
            full_html=True,
            default_width=width,
            default_height=height,
            post_script=measure,
        )
        dom = assert_renders_without_console_errors(html)
    found = re.search(r'<pre id="boxes">(.*?)</pre>', dom, re.S)
    assert found, "the measuring script did not run"
    return json.loads(found.group(1))


def overlapping(found: list[list[float]]) -> list[tuple[int, int]]:
    """Pairs of boxes that overlap by more than a pixel each way."""
    return [
        (i, j)
        for i, a in enumerate(found)
        for j, b in enumerate(found[:i])
        if min(a[2], b[2]) - max(a[0], b[0]) > 1 and min(a[3], b[3]) - max(a[1], b[1]) > 1
    ]
