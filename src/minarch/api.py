"""The Python API: the same verbs as the CLI, as keyword-only functions.

import minarch
minarch.run("quickstart", db="sqlite:///runs.db")
frame = minarch.runs(db="sqlite:///runs.db", study="quickstart")
"""

from __future__ import annotations

import os
import tempfile
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from rich.console import Console

from minarch.analysis import Analysis
from minarch.analysis import analyze as analyze_runs
from minarch.data import (
    check_dataset,
    dataset_info,
    dataset_names,
    default_data_dir,
    needs_folder,
)
from minarch.errors import MinarchError
from minarch.execute import (
    DatasetCache,
    Plan,
    Summary,
    execute,
    execute_in_workers,
    plan_study,
)
from minarch.report import write_report
from minarch.spec import StudySpec, parse_study
from minarch.spec import load_study as _load_study
from minarch.store import Store, default_db_url, open_store

DEFAULT_REPORTS = Path("minarch-reports")


@dataclass(frozen=True)
class RunOutcome:
    study: str
    summary: Summary
    report: Path | None


def load_study(source: str | Path) -> StudySpec:
    """A validated study from a YAML path or a built-in name such as ``quickstart``."""
    return _load_study(source)[0]


def plan(source: str | Path) -> Plan:
    """Expand and size a study without training (and without touching any store)."""
    study, text = _load_study(source)
    try:
        return plan_study(study, text)
    except MinarchError as exc:
        raise type(exc)(f"{source}: {exc}") from None


def finished_runs(the_plan: Plan, *, db: str | None = None) -> set[str]:
    """Ids of the plan's runs the store has finished; empty if the store does not exist yet."""
    url = db or default_db_url()
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return set()
    with _opened(url) as store:
        ids = {r.config.id for r in the_plan.runs}
        return {r.id for r in store.runs(states=["done", "diverged"]) if r.id in ids}


def run(
    source: str | Path = "quickstart",
    *,
    db: str | None = None,
    data_dir: str | Path | None = None,
    out: str | Path | None = None,
    device: str = "auto",
    download: bool = True,
    workers: int = 1,
    report: bool = True,
    console: Console | None = None,
) -> RunOutcome:
    """Train every run of the study that is not done yet, then write its report.

    All input is checked (study, devices, output folder, database, data files)
    before anything is written to the store. ``workers`` > 1 trains packs in
    that many processes (CPU cores split between them; one GPU each).
    """
    if workers < 1:
        raise MinarchError(f"--workers: expected a positive number, got {workers}")
    console = console or Console(stderr=True)
    the_plan = plan(source)
    name = the_plan.study.name
    torch_device = resolve_device(device)
    reports = _writable_dir(Path(out) if out else DEFAULT_REPORTS, "--out") if report else None
    url = db or default_db_url()
    with _opened(url) as store:
        configs = {r.config.id: r.config for r in the_plan.runs}
        done = {r.id for r in store.runs(states=["done", "diverged"]) if r.id in configs}
        datasets = DatasetCache(
            Path(data_dir) if data_dir else default_data_dir(), torch_device, download=download
        )
        for config in configs.values():
            if config.id not in done:
                datasets.get(config.dataset)  # missing or corrupt data fails before any write
        added = store.register_study(name, the_plan.text, [r.new_run() for r in the_plan.runs])
        console.print(
            f"study [bold]{name}[/bold]: {len(configs)} runs, {len(done)} already "
            f"finished, {added} new; training on {torch_device}"
        )
        if workers == 1:
            summary = execute(name, configs, store, datasets, artifacts_dir(url), console=console)
        else:
            summary = execute_in_workers(
                name,
                configs,
                store,
                workers=workers,
                db_url=url,
                data_dir=datasets.data_dir,
                download=download,
                artifacts=artifacts_dir(url),
                device=torch_device,
                console=console,
            )
        path = _report(store, name, reports / name) if reports else None
    return RunOutcome(name, summary, path)


def status(*, db: str | None = None) -> pd.DataFrame:
    """Per study: how many runs are pending, running, done, failed, diverged."""
    with _opened(db or default_db_url()) as store:
        return store.status()


def runs(*, db: str | None = None, study: str | None = None) -> pd.DataFrame:
    """One row per run: configuration, size, state and final/best metrics."""
    with _opened(db or default_db_url()) as store:
        _check_study(store, study)
        return store.runs_frame(study=study)


def epochs(*, db: str | None = None, study: str | None = None) -> pd.DataFrame:
    """One row per run and epoch: the training curves."""
    with _opened(db or default_db_url()) as store:
        _check_study(store, study)
        return store.epochs_frame(study=study)


def report(
    *, db: str | None = None, study: str | None = None, out: str | Path | None = None
) -> list[Path]:
    """Write ``OUT/<study>/report.html`` (and figures) for one study or all of them."""
    reports = _writable_dir(Path(out) if out else DEFAULT_REPORTS, "--out")
    with _opened(db or default_db_url()) as store:
        _check_study(store, study)
        names = [study] if study else store.studies()
        return [_report(store, name, reports / name) for name in names]


def datasets(*, data_dir: str | Path | None = None) -> pd.DataFrame:
    """Known datasets, whether their files are in the data folder, and their checksums."""
    folder = Path(data_dir) if data_dir else default_data_dir()
    rows = []
    for name in dataset_names():
        info, checks = dataset_info(name), check_dataset(name, folder)
        rows.append(
            {
                "dataset": name,
                "input_shape": "×".join(map(str, info.input_shape)),
                "classes": info.num_classes,
                "files": len(checks),
                "present": sum(c.present for c in checks),
                "checksums_ok": sum(bool(c.checksum_ok) for c in checks),
                "status": "your folder (path:)" if needs_folder(name) else _data_status(checks),
                "description": info.description,
            }
        )
    return pd.DataFrame(rows)


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise MinarchError("--device cuda: no CUDA device is available (use --device cpu)")
    if device not in ("cpu", "cuda"):
        raise MinarchError(f"--device: expected auto, cpu or cuda, got {device!r}")
    return torch.device(device)


def artifacts_dir(db_url: str) -> Path:
    """Weights live beside a SQLite file; otherwise in $MINARCH_ARTIFACTS or ./minarch-artifacts."""
    if os.environ.get("MINARCH_ARTIFACTS"):
        return Path(os.environ["MINARCH_ARTIFACTS"])
    if db_url.startswith("sqlite:///") and db_url != "sqlite:///:memory:":
        return Path(db_url.removeprefix("sqlite:///")).parent / "minarch-artifacts"
    return Path("minarch-artifacts")


def _data_status(checks) -> str:
    if not checks:
        return "generated"
    if not all(c.present for c in checks):
        return "missing"
    return "ok" if all(c.checksum_ok for c in checks) else "checksum mismatch"


def analyze(*, db: str | None = None, study: str | None = None) -> dict[str, Analysis]:
    """Convergence regimes and minimal parameters (METHODS.md A.1–A.2) per study.

    Each study is analysed with the thresholds of its own ``analysis:`` section.
    """
    with _opened(db or default_db_url()) as store:
        _check_study(store, study)
        return {
            name: analyze_runs(
                store.runs_frame(study=name),
                store.epochs_frame(study=name),
                _stored_study(store, name).analysis,
            )
            for name in ([study] if study else store.studies())
        }


def _stored_study(store: Store, name: str) -> StudySpec:
    return parse_study(store.study_spec(name), f"study '{name}' in the store")


def _report(store: Store, study: str, folder: Path) -> Path:
    return write_report(
        store.runs_frame(study=study),
        store.epochs_frame(study=study),
        folder,
        title=f"minarch study: {study}",
        study=_stored_study(store, study),
    )


def _check_study(store: Store, study: str | None) -> None:
    if study is not None and study not in store.studies():
        known = ", ".join(store.studies()) or "none yet"
        raise MinarchError(f"--study {study}: no such study in the store (known: {known})")


def _writable_dir(path: Path, option: str) -> Path:
    """Fail before training, not after, when the report folder cannot be written."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise MinarchError(f"{option} {path}: cannot write there ({exc.strerror or exc})") from None
    return path


def _opened(url: str) -> closing[Store]:
    """``with _opened(url) as store``: closed however the block ends."""
    return closing(open_store(url))
