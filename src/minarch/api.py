"""The Python API: the same verbs as the CLI, as keyword-only functions.

import minarch
minarch.run("quickstart", db="sqlite:///runs.db")
frame = minarch.runs(db="sqlite:///runs.db", study="quickstart")
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from rich.console import Console

from minarch.errors import MinarchError
from minarch.store import Store, default_db_url, open_store
from minarch.tables import TABLES

if TYPE_CHECKING:
    from minarch.analysis import Analysis
    from minarch.execute import Plan, Summary
    from minarch.spec import StudySpec

# Verbs import torch-heavy packages (execute, analysis, report, data) inside
# their bodies, so the read-only ones (status, runs, epochs) answer in well
# under a second.

DEFAULT_REPORTS = Path("minarch-reports")


@dataclass(frozen=True)
class RunOutcome:
    study: str
    summary: Summary
    report: Path | None


def load_study(source: str | Path) -> StudySpec:
    """A validated study from a YAML path or a built-in name such as ``quickstart``."""
    from minarch.spec import load_study as load

    return load(source)[0]


def plan(source: str | Path) -> Plan:
    """Expand and size a study without training (and without touching any store)."""
    from minarch.execute import plan_study
    from minarch.spec import load_study as load

    study, text = load(source)
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
    artifacts: str | Path | None = None,
    device: str = "auto",
    download: bool = True,
    executor: str = "local",
    workers: int | str = "auto",
    threads: int | None = None,
    address: str | None = None,
    gpus_per_pack: float | None = None,
    cpus_per_pack: float | None = None,
    report: bool = True,
    console: Console | None = None,
) -> RunOutcome:
    """Train every run of the study that is not done yet, then write its report.

    All input is checked (study, devices, folders, database, data files)
    before anything is written to the store. ``workers="auto"`` trains in one
    process per usable core (CPU) or GPU; on a CPU each pack trains with one
    intra-op thread unless ``threads`` says otherwise, so a run's numbers do
    not depend on the machine's load or the number of workers.
    ``executor="ray"`` trains one Ray task per pack instead, on the cluster at
    ``address`` (``"auto"`` or ``"HOST:PORT"``; default: a Ray instance on this
    machine), each asking for ``gpus_per_pack`` and ``cpus_per_pack`` (default:
    the study file's ``execution:`` section, else 1 GPU when the cluster has
    GPUs and 1 CPU).
    Raises ``minarch.errors.Interrupted`` on SIGINT/SIGTERM, runs left pending.
    """
    from minarch.data import default_data_dir
    from minarch.execute import (
        DatasetCache,
        RayOptions,
        Workspace,
        artifacts_dir,
        make_executor,
        place,
        resolve_threads,
        run_study,
        writable_dir,
    )

    console = console or Console(stderr=True)
    the_plan = plan(source)
    reports = writable_dir(Path(out) if out else DEFAULT_REPORTS, "--out") if report else None
    url = db or default_db_url()
    placement = place(
        executor,
        device=device,
        workers=workers,
        packs=len(the_plan.packs()),
        ray=RayOptions(address, gpus_per_pack, cpus_per_pack),
        execution=the_plan.study.execution,
        db_url=url,
    )
    workspace = Workspace(
        db_url=url,
        data_dir=Path(data_dir) if data_dir else default_data_dir(),
        artifacts=Path(artifacts) if artifacts else artifacts_dir(url),
        device=str(placement.device),
        threads=resolve_threads(threads, placement.device),
        workers=placement.workers,
        download=download,
    )
    with _opened(url) as store:  # a bad --db fails before any folder is made
        writable_dir(workspace.artifacts, "--artifacts")
        datasets = DatasetCache(workspace.data_dir, placement.local_device, download=download)
        trainer = make_executor(placement, workspace, datasets)
        summary = run_study(the_plan, store, trainer, datasets, console)
        path = _report(store, the_plan.study.name, reports) if reports else None
    return RunOutcome(the_plan.study.name, summary, path)


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
    from minarch.execute import writable_dir

    reports = writable_dir(Path(out) if out else DEFAULT_REPORTS, "--out")
    with _opened(db or default_db_url()) as store:
        _check_study(store, study)
        names = [study] if study else store.studies()
        return [_report(store, name, reports) for name in names]


def datasets(*, data_dir: str | Path | None = None) -> pd.DataFrame:
    """Known datasets, whether their files are in the data folder, and their checksums."""
    from minarch.data import (
        check_dataset,
        dataset_info,
        dataset_names,
        default_data_dir,
        needs_folder,
    )

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
    from minarch.analysis import analyze_study

    with _opened(db or default_db_url()) as store:
        _check_study(store, study)
        return {name: analyze_study(store, name) for name in _names(store, study)}


def table(name: str, *, db: str | None = None, study: str | None = None) -> pd.DataFrame:
    """One analysis table (a key of ``TABLES``) for one study or all, with a ``study`` column.

    Each study is analysed with the thresholds of its own ``analysis:`` section;
    ``frame.attrs["thresholds"]`` holds them per study.
    """
    from minarch.analysis import stored_study, study_table

    if name not in TABLES:
        raise MinarchError(f"--table: expected one of {', '.join(TABLES)}, got {name!r}")
    with _opened(db or default_db_url()) as store:
        _check_study(store, study)
        names = _names(store, study)
        frames = [study_table(store, name, each).assign(study=each) for each in names]
        thresholds = {each: stored_study(store, each).analysis.model_dump() for each in names}
    frames = [f[["study", *f.columns.drop("study")]] for f in frames]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    frame.attrs["thresholds"] = thresholds  # what each study was analysed with
    return frame


def compression(*, db: str | None = None, study: str | None = None) -> pd.DataFrame:
    """One row per pruning or quantization result, beside its uncompressed run."""
    from minarch.analysis import compression_results

    with _opened(db or default_db_url()) as store:
        _check_study(store, study)
        frames = [compression_results(store, each) for each in _names(store, study)]
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _report(store: Store, study: str, reports: Path) -> Path:
    from minarch.analysis import compression_results, stored_study
    from minarch.report import write_report

    return write_report(
        store.runs_frame(study=study),
        store.epochs_frame(study=study),
        reports / study,
        title=f"minarch study: {study}",
        study=stored_study(store, study),
        compression=compression_results(store, study),
    )


def _check_study(store: Store, study: str | None) -> None:
    if study is not None and study not in store.studies():
        known = ", ".join(store.studies()) or "none yet"
        raise MinarchError(f"--study {study}: no such study in the store (known: {known})")


def _names(store: Store, study: str | None) -> list[str]:
    """The one study asked for, or every study in the store."""
    return [study] if study else store.studies()


def _opened(url: str) -> closing[Store]:
    """``with _opened(url) as store``: closed however the block ends."""
    return closing(open_store(url))
