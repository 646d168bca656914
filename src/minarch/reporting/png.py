"""Paper figures: each figure whose content changed to PNG through kaleido, in one
browser session, started in the background while the report is built.

kaleido 1.x drives an installed Chrome/Chromium through choreographer, which
looks for one in this order: its own downloaded copy, the ``BROWSER_PATH``
environment variable, ``chromium``/``chrome`` on ``PATH``, then the usual
install paths (``/usr/bin/chromium``). It never downloads one by itself, and it
starts the browser with ``--no-sandbox`` (needed when running as root).

PNGs are an optional extra: without a browser the HTML report is complete, and
one plain log line (no warning with a source line) says what was skipped and
the one command that enables them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import queue
import shutil
import tempfile
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path

import kaleido
import plotly
import plotly.graph_objects as go
from kaleido.errors import ChromeNotFoundError, KaleidoError

from minarch.reporting.section import Figure
from minarch.scratch import remove_stale, tag

PNG_OPTIONS = {"format": "png", "width": 900, "height": 560, "scale": 2}
LEGEND_TOP, LEGEND_ENTRY = 150, 32  # px above the legend's entries, and per entry (font 14)
GET_CHROME = "plotly_get_chrome -y"
"""Installs a Chrome where kaleido looks first (it comes with plotly); see the module doc."""

log = logging.getLogger(__name__)


class Browser:
    """Chromium through kaleido, started in a thread of its own as soon as this is made.

    Its start takes seconds, which ``write_report`` spends building the sections
    meanwhile. One session renders one batch of figures (``render``, at most
    once) and ends; leaving the ``with`` block ends a session that rendered none.
    """

    def __init__(self) -> None:
        self._batches: queue.Queue[list[dict] | None] = queue.Queue()
        self._done: Future[None] = Future()
        self._thread = threading.Thread(target=self._run, name="kaleido", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            asyncio.run(self._session())
        except BaseException as e:  # the start's or the render's, raised again by render
            self._done.set_exception(e)
        else:
            self._done.set_result(None)

    async def _session(self) -> None:
        # mathjax=False: its default is a CDN script, and the figures have no LaTeX.
        # One tab (n=1): 6 figures took 7 s with one, 12 s with 4 tabs and 26 s with a
        # fig.write_image (a browser start) each; without the reloads below, 2 tabs drew
        # the quickstart's 13 figures no faster than one (1.6-1.8 s, 1.6-2.3 s, load 7).
        async with kaleido.Kaleido(n=1, mathjax=False) as browser:
            # kaleido reloads its tab after each figure, parsing plotly.js (4.6 MB) again:
            # half the render time of a report. Plotly.toImage draws each figure in a div
            # of its own and removes it, so the tab is put back as it is: a figure drawn
            # after others is the same PNG, byte for byte (tests/test_report_browser.py).
            # A private hook of kaleido 1.2-1.5, hence the pin in pyproject.toml.
            browser._return_kaleido_tab = browser.tabs_ready.put
            batch = await asyncio.to_thread(self._batches.get)
            if batch:
                await browser.write_fig_from_object(batch, cancel_on_error=True)

    def render(self, figures: Sequence[Figure], scratch: Path) -> bool:
        """Render all PNGs into ``scratch``; False (with a log line) when kaleido cannot."""
        self._batches.put(
            [
                {"fig": f.figure, "path": scratch / f"{f.slug}.png", "opts": _options(f.figure)}
                for f in figures
            ]
        )
        try:
            self._done.result()
        except ChromeNotFoundError:
            log.warning(
                "PNG figures skipped (the HTML report is complete): no Chrome or Chromium "
                f"found; run `{GET_CHROME}` to enable them, then write the report again."
            )
            return False
        # browser start/crash errors are RuntimeErrors; a stuck render is a TimeoutError
        except (KaleidoError, OSError, RuntimeError, TimeoutError) as e:
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            log.warning(
                "PNG figures skipped (the HTML report is complete): the browser failed "
                f"({reason}); set BROWSER_PATH to a working Chrome or Chromium, then write "
                "the report again."
            )
            return False
        return True

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self._batches.put(None)  # ends a session still waiting for its batch
        self._thread.join()


def export_pngs(
    figures: Sequence[Figure], fig_dir: Path, exported: Mapping[str, str], browser: Browser
) -> dict[str, str] | None:
    """Write ``fig_dir/<slug>.png`` for each figure whose PNG there is missing or shows
    other content; return each figure's content hash, or None (logged) if none could be.

    ``exported`` maps the slugs of the PNGs in ``fig_dir`` to their content hashes
    (``content_hash``): a browser render costs a good part of a second, a hash a
    few milliseconds. PNGs are rendered into a scratch folder first, so a failure
    leaves the previous figures in place rather than a partial set. ``browser`` renders
    them.
    """
    hashes = {f.slug: content_hash(f.figure) for f in figures}
    changed = [
        f
        for f in figures
        if exported.get(f.slug) != hashes[f.slug] or not (fig_dir / f"{f.slug}.png").is_file()
    ]
    if not changed:
        return hashes
    remove_stale(fig_dir.parent)  # what a killed report left
    scratch = Path(tempfile.mkdtemp(prefix=f".figures{tag()}", dir=fig_dir.parent))
    try:
        if not browser.render(changed, scratch):
            return None
        fig_dir.mkdir(exist_ok=True)
        for f in changed:
            os.replace(scratch / f"{f.slug}.png", fig_dir / f"{f.slug}.png")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return hashes


def content_hash(figure: go.Figure) -> str:
    """What a figure's PNG shows: its JSON, its size, and the plotly.js that renders it."""
    drawn = json.dumps([plotly.__version__, _options(figure)]) + figure.to_json()
    return hashlib.sha256(drawn.encode()).hexdigest()


def _options(figure: go.Figure) -> dict:
    """PNG_OPTIONS, taller where the legend has more entries than 560 px hold."""
    return PNG_OPTIONS | {"height": figure_height(figure)}


def figure_height(figure: go.Figure) -> int:
    """560 px, or taller where the legend has more rows (entries and group titles) than that holds.

    A static image cannot scroll its legend, so entries past the bottom would be
    lost; in the HTML page a scrolled legend reads as cut off.
    """
    shown = [t for t in figure.data if "showlegend" in t and t.showlegend is not False and t.name]
    groups = {
        t.legendgrouptitle.text
        for t in shown
        if "legendgrouptitle" in t and t.legendgrouptitle.text
    }
    entries = len(shown) + len(groups) + sum(1 for s in figure.layout.shapes if s.showlegend)
    return max(PNG_OPTIONS["height"], LEGEND_TOP + LEGEND_ENTRY * entries)
