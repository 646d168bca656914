"""The HTML report: self-contained, escaped, robust to odd run tables, atomic."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings
from html import escape

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.offline
import pytest
from kaleido.errors import ChromeNotFoundError

from minarch.data import dataset_info
from minarch.errors import MinarchError
from minarch.reporting import ReportInput, png, write_report
from minarch.reporting.png import GET_CHROME
from minarch.reporting.sections.accuracy import accuracy_vs_params
from minarch.reporting.sections.curves import learning_curves
from minarch.reporting.style import count
from tests.browser import CHROMIUM, assert_renders_without_console_errors, requires_chromium

EVIL = "<script>alert(1)</script>"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FAMILIES = {"mlp": (1_000, 10_000, 100_000), "cnn": (2_000, 20_000, 200_000)}
FAMILIES["vit"] = (5_000, 50_000, 500_000)
DATASETS = ("digits", "mnist1d")
# accuracy vs params, accuracy curves, loss curves, regime map, curves by regime
FIGURES_PER_DATASET = 5
STUDY_FIGURES = 1  # P_min vs dataset, with two or more datasets


def frames(datasets=DATASETS, seeds=3, state_of=lambda fam, size, seed: "done"):
    """Runs and epochs as the store returns them: families x sizes x seeds per dataset."""
    rng = np.random.default_rng(0)
    runs, epochs = [], []
    for dataset in datasets:
        for family, sizes in FAMILIES.items():
            for size, params in enumerate(sizes):
                for seed in range(seeds):
                    state = state_of(family, size, seed)
                    acc = 0.6 + 0.1 * size + 0.02 * rng.standard_normal()
                    acc = acc if state == "done" else np.nan
                    run_id = f"{dataset}-{family}-{size}-{seed}"
                    runs.append(
                        {
                            "run_id": run_id,
                            "study": "demo",
                            "dataset": dataset,
                            "family": family,
                            "model": f"{family} w{params}",
                            "params": params,
                            "flops": 2 * params,
                            "lr": 1e-3,
                            "weight_decay": 5e-4,
                            "seed": seed,
                            "state": state,
                            "final_val_acc": acc,
                            "best_val_acc": acc,
                            "final_train_acc": acc,
                        }
                    )
                    if state in ("pending", "running"):
                        continue
                    for epoch in range(6):
                        loss = np.inf if state == "diverged" and epoch > 2 else np.exp(-epoch)
                        epochs.append(
                            {
                                "run_id": run_id,
                                "epoch": epoch,
                                "train_loss": loss,
                                "train_acc": 0.5,
                                "val_loss": loss,
                                "val_acc": 0.1 + 0.1 * epoch,
                                "val_top5": 0.9,
                                "lr": 1e-3,
                                "wall_time": float(epoch),
                            }
                        )
    return pd.DataFrame(runs), pd.DataFrame(epochs)


def mixed_state(family, size, seed):
    """Some diverged and pending runs among the done ones."""
    if family == "vit" and size == 0 and seed == 2:
        return "diverged"
    if family == "cnn" and size == 2 and seed == 2:
        return "pending"
    return "done"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """One full report (with PNGs where Chromium exists) shared by the read-only tests."""
    runs, epochs = frames(state_of=mixed_state)
    runs.loc[runs["model"] == "mlp w1000", "model"] = f"mlp {EVIL}"
    out = tmp_path_factory.mktemp("report")
    path = write_report(runs, epochs, out, title=f"Study {EVIL}", png=CHROMIUM.is_file())
    return path, path.read_text(encoding="utf-8")


def test_report_is_self_contained(report):
    path, html = report
    assert path.name == "report.html"
    bundle = plotly.offline.get_plotlyjs()
    assert html.count(bundle) == 1
    page = html.replace(bundle, "")  # the bundle names its (unused) topojson CDN
    assert "<script src=" not in page
    assert "cdn.plot.ly" not in page
    assert "fonts.googleapis" not in page


def test_report_escapes_user_strings(report):
    _, html = report
    page = html.replace(plotly.offline.get_plotlyjs(), "")
    assert EVIL not in page
    assert "Study &lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "mlp &lt;script&gt;alert(1)&lt;/script&gt;" in page  # summary table


def test_report_has_every_dataset_and_figure(report):
    _, html = report
    for dataset in DATASETS:  # under its registered title: "Digits (8x8)", "MNIST-1D"
        assert f"<h3>{escape(dataset_info(dataset).title)}</h3>" in html
    assert html.count("Plotly.newPlot(") == FIGURES_PER_DATASET * len(DATASETS) + STUDY_FIGURES
    assert "No finished runs yet" not in html


@requires_chromium
def test_report_pngs_are_written(report):
    path, _ = report
    pngs = sorted((path.parent / "figures").glob("*.png"))
    assert len(pngs) == FIGURES_PER_DATASET * len(DATASETS) + STUDY_FIGURES
    assert all(p.read_bytes().startswith(PNG_MAGIC) for p in pngs)
    assert not list(path.parent.glob(".*")), "scratch files left behind"


@pytest.mark.slow
@requires_chromium
def test_report_renders_offline_without_console_errors(report):
    path, _ = report
    assert_renders_without_console_errors(path, min_plots=FIGURES_PER_DATASET * len(DATASETS))


@pytest.mark.slow
@requires_chromium
def test_browser_check_catches_script_errors(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text("<html><body><script>notDefined();</script></body></html>")
    with pytest.raises(AssertionError, match="Uncaught ReferenceError"):
        assert_renders_without_console_errors(page)


@pytest.mark.parametrize("columns", [True, False], ids=["with-columns", "bare"])
def test_empty_frames_say_no_finished_runs(tmp_path, columns):
    runs, epochs = frames()
    if columns:
        runs, epochs = runs.iloc[:0], epochs.iloc[:0]
    else:
        runs, epochs = pd.DataFrame(), pd.DataFrame()
    path = write_report(runs, epochs, tmp_path / "out", title="empty")
    html = path.read_text(encoding="utf-8")
    assert "No finished runs yet" in html
    assert "Plotly.newPlot(" not in html
    assert not (tmp_path / "out" / "figures").exists()


def test_pending_only_study_says_no_finished_runs(tmp_path):
    runs, epochs = frames(state_of=lambda *_: "pending")
    html = write_report(runs, epochs, tmp_path, title="t", png=False).read_text()
    assert "No finished runs yet" in html
    assert '<table class="summary">' in html


def test_dataset_with_only_diverged_runs_shows_them(tmp_path):
    runs, epochs = frames(datasets=("digits",))
    wild_runs, wild_epochs = frames(datasets=("wild",), state_of=lambda *_: "diverged")
    runs = pd.concat([runs, wild_runs], ignore_index=True)
    epochs = pd.concat([epochs, wild_epochs], ignore_index=True)
    section = accuracy_vs_params(ReportInput(runs, epochs))
    (wild_fig,) = [f.figure for f in section.figures if f.slug.endswith("wild")]
    # each architecture's accuracy counts its diverged seeds at chance (0: unknown dataset)
    assert [t.name for t in wild_fig.data] == ["cnn", "mlp", "vit", "diverged"]
    assert {y for t in wild_fig.data[:3] for y in t.y} == {0.0}
    assert wild_fig.data[-1].marker.symbol == "x"
    html = write_report(runs, epochs, tmp_path, title="t", png=False).read_text()
    assert "<h3>wild</h3>" in html


def test_single_seed_has_no_error_bars_and_nan_accuracies_are_skipped():
    runs, epochs = frames(datasets=("digits",), seeds=1)
    runs.loc[0, "best_val_acc"] = np.nan  # done, but its accuracy never recorded
    section = accuracy_vs_params(ReportInput(runs, epochs))
    (fig,) = [f.figure for f in section.figures]
    assert all(v is None for trace in fig.data for v in trace.error_y.array)
    assert all(np.isfinite(trace.y).all() for trace in fig.data)


def test_family_colour_is_the_same_in_every_figure():
    runs, epochs = frames(datasets=("digits",))
    data = ReportInput(runs, epochs)
    (accuracy,) = accuracy_vs_params(data).figures
    family = {trace.name: trace.line.color for trace in accuracy.figure.data}
    assert len(family) == len(set(family.values())) == len(FAMILIES)
    for curves in learning_curves(data).figures:
        for name, sizes in FAMILIES.items():
            traces = [t for t in curves.figure.data if t.legendgroup == name]
            assert [t.name for t in traces] == [f"{name} w{p} ({count(p)})" for p in sizes]
            colours = [t.line.color for t in traces]
            assert colours[-1] == family[name]  # the largest in the family's own colour
            assert len(set(colours)) == len(sizes)  # smaller ones lighter, each its own


def test_dataset_names_that_slug_alike_get_distinct_figures(tmp_path):
    runs, epochs = frames(datasets=("a b", "a-b"))
    html = write_report(runs, epochs, tmp_path, title="t", png=False).read_text()
    ids = re.findall(r'<div id="([^"]+)" class="plotly-graph-div"', html)
    assert len(ids) == len(set(ids)) == 2 * FIGURES_PER_DATASET + STUDY_FIGURES


_WITHOUT_CHROME = """
import sys
import kaleido
from kaleido.errors import ChromeNotFoundError

def no_browser(*args, **kwargs):
    raise ChromeNotFoundError("no browser on this machine")

kaleido.Kaleido = no_browser
from minarch.reporting import write_report
from tests.test_report import frames

write_report(*frames(datasets=("digits",)), sys.argv[1], title="t")
"""


def test_missing_chromium_says_so_in_one_plain_line_and_still_writes_html(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_CHROME, str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)},
        check=True,
    )
    (line,) = done.stderr.splitlines()  # no warning's source line, no traceback
    assert line.startswith("PNG figures skipped (the HTML report is complete): no Chrome")
    assert f"run `{GET_CHROME}` to enable them" in line
    assert (tmp_path / "out" / "report.html").is_file()
    assert not (tmp_path / "out" / "figures").exists()


def test_missing_chromium_is_a_log_record_not_a_warning(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(png.kaleido, "Kaleido", _raise(ChromeNotFoundError))
    runs, epochs = frames(datasets=("digits",))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = write_report(runs, epochs, tmp_path / "out", title="t")
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "PNG figures skipped" in caplog.text
    assert path.is_file()


def _raise(error: type[Exception]):
    def fail(*args, **kwargs):
        raise error("simulated")

    return fail


def test_unwritable_out_dir_is_a_minarch_error_and_writes_nothing(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    runs, epochs = frames(datasets=("digits",))
    with pytest.raises(MinarchError, match=re.escape(str(blocker / "out"))):
        write_report(runs, epochs, blocker / "out", title="t")
    assert [p.name for p in tmp_path.iterdir()] == ["file"]
    assert blocker.read_text() == "not a directory"


def test_missing_column_is_a_minarch_error(tmp_path):
    runs, epochs = frames(datasets=("digits",))
    with pytest.raises(MinarchError, match="best_val_acc"):
        write_report(runs.drop(columns="best_val_acc"), epochs, tmp_path, title="t", png=False)


def test_pngs_grow_taller_for_long_legends_only():
    from minarch.reporting.png import PNG_OPTIONS, _options

    def figure(entries: int, hidden: int = 0) -> go.Figure:
        fig = go.Figure()
        for i in range(entries + hidden):
            fig.add_scatter(x=[0, 1], y=[i, i], name=f"model {i}", showlegend=i < entries)
        return fig

    assert _options(figure(3)) == PNG_OPTIONS
    assert _options(figure(3, hidden=40)) == PNG_OPTIONS  # hidden twins take no room
    tall = _options(figure(28))["height"]
    assert tall > PNG_OPTIONS["height"] and tall >= 28 * 30


def test_the_report_says_at_its_top_which_configurations_it_left_out(tmp_path):
    running = lambda fam, size, seed: "running" if (fam, size, seed) == ("mlp", 0, 2) else "done"  # noqa: E731
    runs, epochs = frames(datasets=("digits",), state_of=running)
    html = write_report(runs, epochs, tmp_path, title="t", png=False).read_text()
    top = html[: html.index("<section")]
    assert (
        "1 configuration with seeds not yet finished (pending, running or failed) left out" in top
    )


def test_p_min_bounds_and_interleaved_regimes_are_marked_in_table_and_figures():
    from minarch.reporting.sections.regimes import EDGE_SYMBOLS, convergence_regimes

    runs, epochs = frames()
    section = convergence_regimes(ReportInput(runs, epochs))
    minimal = ReportInput(runs, epochs).analysis.minimal
    html = "".join(p for p in section.parts if isinstance(p, str))
    marks = {"lower": "≤ ", "upper": "≥ ", "not_reached": "not reached (&gt; "}
    for edge in minimal["p_min_edge"]:
        assert marks.get(edge, "") in html
    (fig,) = [f.figure for f in section.figures if f.slug == "p-min-vs-dataset"]
    symbols = {s for trace in fig.data for s in trace.marker.symbol}
    assert symbols <= set(EDGE_SYMBOLS.values()) | {"circle", "square", "diamond"}
    assert {EDGE_SYMBOLS[e] for e in minimal["p_min_edge"] if e} <= symbols


def test_the_dataset_order_is_measured_once_per_report(tmp_path, monkeypatch):
    """Every section orders its datasets easy to hard; the order is measured once."""
    from minarch.reporting import section

    calls = []
    measure = section.dataset_order
    monkeypatch.setattr(
        section, "dataset_order", lambda *a, **k: calls.append(1) or measure(*a, **k)
    )
    write_report(*frames(), tmp_path, title="t", png=False)
    assert len(calls) == 1
