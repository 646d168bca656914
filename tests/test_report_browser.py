"""End to end in a real browser: a small study's report, rendered by headless Chromium, shows
its findings, flags P_min at the grid's edge as a bound and names its legend entries, with no
console message; and a screenshot of it is a drawn page."""

from __future__ import annotations

import re
import struct
import subprocess
import tempfile

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from kaleido._kaleido_tab import _KaleidoTab

import minarch
from minarch.reporting import png, style
from minarch.reporting.section import Figure
from minarch.reporting.sections.regimes import p_min_lines
from minarch.reporting.sections.sensitivity import _parallel as parallel_categories
from tests.browser import (
    CHROMIUM,
    assert_renders_without_console_errors,
    boxes,
    overlapping,
    requires_chromium,
)
from tests.cli import TINY_STUDY
from tests.tiny_store import tiny_store

DESCRIPTION = "Does a wider MLP learn digits more reliably?"
STUDY = TINY_STUDY.replace("lr: 0.01", "lr: [0.001, 0.01, 0.1]") + f"description: {DESCRIPTION}\n"
# accuracy vs size, two learning curves, regime map, curves by regime, lr slices, parallel view
PLOTS = 7
EDGE = r"≥ [\d,]+"  # only the largest size tested qualifies: a bound, marked so


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("browser")
    (path,) = minarch.report(db=tiny_store(folder, STUDY), out=folder / "reports")
    return path


@pytest.mark.slow
@requires_chromium
def test_the_rendered_report_shows_findings_edges_and_legends(report):
    dom = assert_renders_without_console_errors(report, min_plots=PLOTS)
    assert f'<p class="description">{DESCRIPTION}</p>' in dom
    findings = re.findall(r'<div class="findings">(.*?)</div>', dom, re.S)
    # accuracy, curves, regimes, sensitivity, claims (the summary has none)
    assert len(findings) == 5 and "to decide:" in findings[4]
    assert re.search(f"mlp on Digits \\(8x8\\): P_min {EDGE} parameters", findings[2])
    assert "train larger ones to find it" in findings[2]
    assert "over the learning rates tried" in findings[3]
    assert re.search(f"<td>{EDGE}</td>", dom)  # the minimal-parameters table
    legend = re.findall(r'class="legendtext"[^>]*>([^<]*)<', dom)
    assert any(re.fullmatch(f"P_min mlp: {EDGE}", entry) for entry in legend)
    assert "mlp · learning" in legend
    assert {"mlp d1 w4 (310)", "mlp d1 w32 (2.41k)"} <= set(legend)
    assert "no runs in this regime" in dom
    assert "chance (10 %)" in dom


@pytest.mark.slow
@requires_chromium
def test_a_screenshot_of_the_report_is_a_drawn_page(report, tmp_path):
    shot = tmp_path / "report.png"
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
            + ["--no-first-run", "--disable-background-networking", "--disable-component-update"]
            + [f"--user-data-dir={profile}", "--window-size=1100,4000"]
            + ["--virtual-time-budget=5000", f"--screenshot={shot}", report.resolve().as_uri()],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (1100, 4000)
    assert len(data) > 100_000  # a blank page of this size compresses to a few kB


@requires_chromium
def test_p_min_labels_of_close_lines_do_not_overlap():
    """Three families whose P_min lie within a few percent of the axis: their labels clear."""
    minimal = pd.DataFrame(
        {
            "family": ["cnn", "mlp", "vit"],
            "p_min": [1_000, 1_150, 1_300],
            "p_min_edge": "",  # bracketed: found between the sizes tested
            "largest_params": 100_000,
            "interleaved": False,
        }
    )
    params = pd.Series([10, 100_000])
    fig = go.Figure(go.Scatter(x=params, y=[10, 90], mode="markers"))
    p_min_lines(fig, minimal, params)
    style.log_axis(fig, params)
    labels = boxes(fig, "g.annotation")
    assert len(labels) == 3
    assert not overlapping(labels), labels


@requires_chromium
def test_parallel_categories_axis_titles_do_not_overlap():
    """Nine varied fields, as a CNN and ViT study has them, side by side in a 900 px figure."""
    rng = np.random.default_rng(0)
    pick = lambda values: rng.choice(values, 24)  # noqa: E731
    runs = pd.DataFrame(
        {
            "config.model.kernel": pick([3.0, 5.0, np.nan]),
            "config.model.pooling": pick(["max", "avg"]),
            "config.model.batch_norm": pick([True, False]),
            "config.model.patch_size": pick([2.0, 4.0, np.nan]),
            "config.model.channels": pick([32.0, 128.0, np.nan]),
            "config.model.depth": pick([1.0, 2.0, 3.0]),
            "lr": pick([0.001, 0.01]),
            "weight_decay": pick([0.0, 1e-4]),
            "params": pick([310, 2410, 12000]),
            "acc": rng.random(24),
        }
    )
    fig = parallel_categories(runs, list(runs.columns[:-1]), "Digits")
    titles = [box for box in boxes(fig, "text.dimlabel") if box[2] - box[0] > 1]
    assert len(titles) == 9
    assert not overlapping(titles), titles


@requires_chromium
def test_one_tab_draws_every_png_without_a_reload_and_the_same_bytes(tmp_path, monkeypatch):
    """kaleido's tab reload after each figure is skipped (half a report's render time),
    and a figure drawn after another is the same PNG as drawn first."""
    reloads = []

    async def reload(tab):
        reloads.append(tab)

    monkeypatch.setattr(_KaleidoTab, "reload", reload)
    first = go.Figure(go.Scatter(x=[1, 2, 3], y=[3, 1, 2], name="a"))
    other = go.Figure(go.Bar(x=["x", "y"], y=[2, 5]), layout={"template": "plotly_dark"})
    figures = [Figure("first", first), Figure("other", other), Figure("again", first)]
    with png.Browser() as browser:
        assert browser.render(figures, tmp_path)
    drawn = {f.slug: (tmp_path / f"{f.slug}.png").read_bytes() for f in figures}
    assert not reloads
    assert drawn["again"] == drawn["first"] != drawn["other"]
    assert drawn["first"][:8] == b"\x89PNG\r\n\x1a\n"
