"""A report whose inputs did not change is not written again; a changed one renders only
the PNGs whose content changed."""

from __future__ import annotations

import io
import subprocess
import sys
from contextlib import AbstractContextManager, closing
from pathlib import Path

import pytest
from rich.console import Console

import minarch
from minarch.reporting import stamp, write, write_report
from minarch.spec import parse_study
from minarch.store import open_store
from minarch.tables import TABLES
from tests.cli import TINY_STUDY
from tests.cli import minarch as minarch_cli
from tests.test_report import frames
from tests.test_tables import NEW_TABLE
from tests.tiny_store import tiny_store


@pytest.fixture
def renders(monkeypatch) -> list[list[str]]:
    """The slugs of each browser session, which writes placeholder PNGs instead: fast."""
    sessions: list[list[str]] = []

    def render(figures, scratch: Path) -> bool:
        sessions.append([f.slug for f in figures])
        for f in figures:
            (scratch / f"{f.slug}.png").write_bytes(b"png")
        return True

    browse_with(monkeypatch, render)
    return sessions


def browse_with(monkeypatch, render) -> None:
    """Reports render PNGs by ``render(figures, scratch)``, and start no Chromium."""

    class Browser(AbstractContextManager):
        def __exit__(self, *exc):
            return None

        def render(self, figures, scratch: Path) -> bool:
            return render(figures, scratch)

    monkeypatch.setattr(write, "Browser", Browser)


def files(folder: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under ``folder`` with its modification time and content."""
    return {
        str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def inputs(runs, epochs, **changes) -> str:
    """The fingerprint of a report of ``runs`` and ``epochs``, with ``changes`` to its options."""
    options = {"title": "t", "study": None, "compression": None, "png": True} | changes
    return stamp.fingerprint(runs, epochs, **options)


def test_the_fingerprint_changes_with_every_input_and_only_then():
    runs, epochs = frames(datasets=("digits",))
    key = inputs(runs, epochs)
    assert inputs(runs.copy(), epochs.copy()) == key
    changed_epoch = epochs.copy()
    changed_epoch.loc[5, "val_acc"] += 1e-12
    one_more_run = frames(datasets=("digits",), seeds=4)[0]
    spec = parse_study(TINY_STUDY, "tiny")
    other_spec = parse_study(TINY_STUDY.replace("seeds: 2", "seeds: 3"), "tiny")
    variants = [
        inputs(runs, changed_epoch),
        inputs(one_more_run, epochs),
        inputs(runs.assign(state="running"), epochs),
        inputs(runs, epochs, title="u"),
        inputs(runs, epochs, png=False),
        inputs(runs, epochs, study=spec),
        inputs(runs, epochs, study=other_spec),
        inputs(runs, epochs, compression=runs.iloc[:0]),
    ]
    assert len({key, *variants}) == len(variants) + 1


def test_a_table_registered_by_a_plugin_changes_the_fingerprint(monkeypatch):
    runs, epochs = frames(datasets=("digits",))
    key = inputs(runs, epochs)
    monkeypatch.setitem(TABLES, NEW_TABLE.name, NEW_TABLE)
    assert inputs(runs, epochs) != key


def test_a_rebuilt_report_renders_only_the_figures_whose_content_changed(tmp_path, renders):
    runs, epochs = frames()
    write_report(runs, epochs, tmp_path, title="t")
    first = set(renders[0])
    assert {"val-acc-curves-digits", "val-acc-curves-mnist1d"} <= first
    digits = epochs["run_id"].str.startswith("digits")
    epochs.loc[digits, "val_acc"] *= 0.9  # the digits curves change, MNIST-1D's do not
    write_report(runs, epochs, tmp_path, title="t")
    assert "val-acc-curves-digits" in renders[1]
    assert not any(slug.endswith("mnist1d") for slug in renders[1])
    assert stamp.read(tmp_path).figures.keys() == first


def test_a_deleted_png_is_rendered_again(tmp_path, renders):
    runs, epochs = frames(datasets=("digits",))
    write_report(runs, epochs, tmp_path, title="t")
    key = inputs(runs, epochs)
    assert stamp.is_current(tmp_path, key)
    (tmp_path / "figures" / "val-acc-curves-digits.png").unlink()
    assert not stamp.is_current(tmp_path, key)
    write_report(runs, epochs, tmp_path, title="t")
    assert renders[1] == ["val-acc-curves-digits"]
    assert stamp.is_current(tmp_path, key)


def test_a_report_without_its_pngs_is_not_current(tmp_path, monkeypatch):
    browse_with(monkeypatch, lambda figures, scratch: False)  # no browser
    runs, epochs = frames(datasets=("digits",))
    write_report(runs, epochs, tmp_path, title="t")
    assert (tmp_path / "report.html").is_file()
    assert not stamp.is_current(tmp_path, inputs(runs, epochs))


def test_a_report_killed_while_writing_is_not_current(tmp_path, monkeypatch, renders):
    runs, epochs = frames(datasets=("digits",))
    write_report(runs, epochs, tmp_path, title="t")
    browse_with(monkeypatch, lambda figures, scratch: 1 / 0)
    epochs["val_acc"] *= 0.9
    with pytest.raises(ZeroDivisionError):
        write_report(runs, epochs, tmp_path, title="t")
    assert stamp.read(tmp_path) == stamp.Stamp()


def _report(db: str, out: Path, **options) -> str:
    """What ``minarch.report`` said on its console."""
    said = io.StringIO()
    minarch.report(db=db, out=out, console=Console(file=said, width=400), **options)
    return said.getvalue()


def test_an_unchanged_store_is_not_reported_again_and_the_report_says_so(tmp_path, renders):
    db, out = tiny_store(tmp_path), tmp_path / "reports"
    assert _report(db, out) == ""
    before = files(out)
    said = _report(db, out)
    assert said == (
        f"{out / 'tiny' / 'report.html'} is up to date: nothing it is built from changed "
        "(`minarch report --rebuild` writes it again)\n"
    )
    assert files(out) == before and len(renders) == 1
    _report(db, out, rebuild=True)
    assert renders[1] == renders[0]  # every PNG again
    assert files(out).keys() == before.keys() and files(out) != before


def test_an_up_to_date_report_loads_no_plotly(tmp_path, renders):
    db, out = tiny_store(tmp_path), tmp_path / "reports"
    _report(db, out)
    check = f"import sys, minarch; minarch.report(db={db!r}, out={str(out)!r}); print(*sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert "is up to date" in loaded.stderr, loaded.stderr
    modules = loaded.stdout.split()
    assert "minarch.reporting.stamp" in modules and "plotly" not in modules


def test_a_store_with_one_more_run_or_a_changed_epoch_is_reported_again(tmp_path, renders):
    db, out = tiny_store(tmp_path), tmp_path / "reports"
    page = out / "tiny" / "report.html"
    _report(db, out)
    (tmp_path / "more.yaml").write_text(TINY_STUDY.replace("seeds: 2", "seeds: 3"))
    plan = minarch.plan(tmp_path / "more.yaml")
    with closing(open_store(db)) as store:
        assert store.register_study("tiny", plan.text, [r.new_run() for r in plan.runs]) == 2
    assert _report(db, out) == ""
    assert "<td>2</td><td>0</td><td>0</td><td>6</td>" in page.read_text()  # 2 of 6 pending
    with closing(open_store(db)) as store:
        run = store.runs(study="tiny", states=["done"])[0]
        store.record_epoch(run.id, 3, {"val_acc": 0.123})
    before = page.stat().st_mtime_ns
    assert _report(db, out) == ""
    assert page.stat().st_mtime_ns > before


@pytest.mark.slow
@pytest.mark.long(30)
def test_the_command_says_when_a_report_is_up_to_date(tmp_path):
    tiny_store(tmp_path)
    args = ("report", "--db", "sqlite:///runs.db", "--out", "reports")
    first = minarch_cli(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    second = minarch_cli(*args, cwd=tmp_path)
    assert second.stdout == first.stdout == f"report: {Path('reports/tiny/report.html')}\n"
    assert "is up to date" in second.stderr and "is up to date" not in first.stderr
    rebuilt = minarch_cli(*args, "--rebuild", cwd=tmp_path)
    assert rebuilt.returncode == 0 and "is up to date" not in rebuilt.stderr
