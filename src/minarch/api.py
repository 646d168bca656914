"""The Python API: the same verbs as the CLI, as keyword-only functions.

import minarch
minarch.run("quickstart", db="sqlite:///runs.db")
frame = minarch.runs(db="sqlite:///runs.db", study="quickstart")
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args, get_origin

import pandas as pd
from rich.console import Console
from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError

from minarch.errors import MinarchError, OptionError, StoreError
from minarch.store import Store, code_versions, default_db_url, open_store
from minarch.tables import analysis_table

if TYPE_CHECKING:
    from minarch.analysis import Analysis
    from minarch.execute import DatasetCache, Executor, Plan, Summary
    from minarch.execute.estimate import TimeEstimate
    from minarch.spec import StudySpec

# Verbs import torch-heavy packages (execute, analysis, report, data) inside
# their bodies, so the read-only ones (status, runs, epochs) answer in well
# under a second.

DEFAULT_REPORTS = Path("minarch-reports")
DEFAULT_MAX_RUNS = 100_000  # execute.planner's default, here so --help loads no torch
_NO_COMPRESSION = (
    "compression results",
    ": its file has no prune: or quantize: section, or none is measured yet",
)


@dataclass(frozen=True)
class RunOutcome:
    study: str
    summary: Summary
    report: Path | None


def load_study(source: str | Path, *, overrides: Sequence[str] = ()) -> StudySpec:
    """A validated study from a YAML path or a built-in name such as ``quickstart``.

    ``overrides`` set values of the file before validation, each ``PATH=VALUE``
    with a dotted path and a YAML value: ``["training.epochs=3", "seeds=[0, 1]"]``.
    """
    from minarch.spec import load_study as load

    return load(source, overrides)[0]


def plan(
    source: str | Path,
    *,
    overrides: Sequence[str] = (),
    max_runs: int = DEFAULT_MAX_RUNS,
    force: bool = False,
) -> Plan:
    """Expand and size a study (with ``overrides``, as ``load_study``) without training.

    Touches no store. A study of more than ``max_runs`` runs is refused before
    it is expanded, and one whose data and largest pack need more memory than
    this machine has is refused unless ``force`` (``execute.memory``).
    """
    from minarch.execute import plan_study
    from minarch.execute.memory import check_memory
    from minarch.spec import load_study as load

    study, text = load(source, overrides)
    try:
        the_plan = plan_study(study, text, max_runs=max_runs)
        if not force:
            check_memory(the_plan)
    except MinarchError as exc:
        raise type(exc)(f"{source}: {exc}") from None
    return the_plan


def estimate_time(
    the_plan: Plan, *, device: str = "auto", console: Console | None = None
) -> TimeEstimate:
    """Each pack's training time, from a few steps timed on ``device`` (``minarch plan --time``).

    ``device="auto"`` is CUDA when present, as for ``run``. Only training steps
    are counted; ``TimeEstimate.frame()`` has one row per pack. Progress goes
    to ``console`` (stderr by default).
    """
    from minarch.execute import resolve_device
    from minarch.execute.estimate import estimate_training

    console = console or Console(stderr=True)
    return estimate_training(the_plan, resolve_device(device), console)


def finished_runs(the_plan: Plan, *, db: str | None = None) -> set[str]:
    """Ids of the plan's runs the store has finished; empty if the store does not exist yet."""
    url = db or default_db_url()
    if _missing_file(url) is not None:
        return set()
    with closing(open_store(url, read_only=True)) as store:  # writes nothing
        ids = {r.config.id for r in the_plan.runs}
        return {r.id for r in store.runs(states=["done", "diverged"]) if r.id in ids}


def run(
    source: str | Path = "quickstart",
    *,
    overrides: Sequence[str] = (),
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
    engine: str | None = None,
    deterministic: bool | None = None,
    report: bool = True,
    max_runs: int = DEFAULT_MAX_RUNS,
    force: bool = False,
    console: Console | None = None,
) -> RunOutcome:
    """Train every run of the study that is not done yet, then write its report.

    All input is checked (study, devices, folders, database, data files)
    before anything is written to the store. ``overrides`` change the study
    file's values as in ``load_study``: a changed configuration is a new run,
    and the store keeps the overridden text as the study's. ``workers="auto"``
    trains in one process per usable core (CPU) or GPU; on a CPU each pack trains with one
    intra-op thread unless ``threads`` says otherwise, so a run's numbers do
    not depend on the machine's load or the number of workers.
    ``executor="ray"`` trains one Ray task per pack instead, on the cluster at
    ``address`` (``"auto"`` or ``"HOST:PORT"``; default: a Ray instance on this
    machine), each asking for ``gpus_per_pack`` and ``cpus_per_pack`` (default:
    the study file's ``execution:`` section, else 1 GPU when the cluster has
    GPUs and 1 CPU). ``engine`` names the pack engine (``minarch.train.ENGINES``;
    default: the study file's ``execution.engine``, else ``"auto"``);
    ``deterministic`` requests deterministic algorithms (default: the study
    file's ``execution.deterministic``).
    Raises ``minarch.errors.Interrupted`` on SIGINT/SIGTERM, runs left pending.
    A study with nothing left to train or measure loads no PyTorch, and its
    options of where to train (device, workers, executor) go unchecked.
    """
    from minarch.data import default_data_dir
    from minarch.execute import artifacts_dir, remove_stale_weights, run_study, writable_dir
    from minarch.execute.signals import interruptible

    console = console or Console(stderr=True)
    the_plan = plan(source, overrides=overrides, max_runs=max_runs, force=force)
    url = db or default_db_url()
    if _in_memory(url):
        raise OptionError(
            "db",
            url,
            "an in-memory store keeps nothing once minarch exits; "
            "name a file, e.g. sqlite:///runs.db",
        )
    weights = Path(artifacts).resolve() if artifacts else artifacts_dir(url)

    @cache
    def start() -> tuple[Executor, DatasetCache]:
        """Where packs train, their executor and this process's datasets (``run_study``)."""
        from minarch.execute import (
            DatasetCache,
            RayOptions,
            Workspace,
            make_executor,
            memory_share,
            place,
            resolve_engine,
            resolve_threads,
        )

        placement = place(
            executor,
            device=device,
            workers=workers,
            packs=len(the_plan.packs()),
            runs=len(the_plan.runs),
            ray=RayOptions(address, gpus_per_pack, cpus_per_pack),
            execution=the_plan.study.execution,
            db_url=url,
        )
        workspace = Workspace(
            db_url=url,
            data_dir=Path(data_dir) if data_dir else default_data_dir(),
            artifacts=weights,
            device=str(placement.device),
            threads=resolve_threads(threads, placement.device),
            workers=placement.workers,
            engine=resolve_engine(engine, the_plan.study.execution.engine),
            deterministic=(
                the_plan.study.execution.deterministic if deterministic is None else deterministic
            ),
            memory_share=memory_share(
                placement.device,
                placement.workers,
                placement.ray.gpus_per_pack if placement.ray else None,
            ),
            download=download,
        )
        datasets = DatasetCache(workspace.data_dir, placement.local_device, download=download)
        return make_executor(placement, workspace, datasets), datasets

    finished = finished_runs(the_plan, db=url)  # a bad --db fails before any file is made
    with interruptible():  # SIGTERM in a first decode (minutes) stops as cleanly as training
        for spec in {r.config.dataset for r in the_plan.runs if r.config.id not in finished}:
            start()[1].get(spec)  # and so do bad options, missing or corrupt data
        reports = writable_dir(Path(out) if out else DEFAULT_REPORTS, "out") if report else None
        with _opened(url) as store:
            writable_dir(weights, "artifacts")
            remove_stale_weights(weights, store)
            summary = run_study(the_plan, store, start, console, max_runs=max_runs)
            path = _report(store, the_plan.study.name, reports, console) if reports else None
    return RunOutcome(the_plan.study.name, summary, path)


def status(*, db: str | None = None) -> pd.DataFrame:
    """Per study: how many runs are pending, running, done, failed, diverged.

    ``versions`` counts the versions of minarch that trained its finished runs.
    """
    with _existing(db) as store:
        frame, runs = store.status(), store.runs_frame()
    versions = {study: len(code_versions(group)) for study, group in runs.groupby("study")}
    return frame.assign(versions=frame["study"].map(versions).fillna(0).astype(int))


def runs(*, db: str | None = None, study: str | None = None) -> pd.DataFrame:
    """One row per run: configuration, size, state and final/best metrics."""
    with _existing(db) as store:
        _check_study(store, study)
        return store.runs_frame(study=study)


def epochs(*, db: str | None = None, study: str | None = None) -> pd.DataFrame:
    """One row per run and epoch: the training curves."""
    with _existing(db) as store:
        _check_study(store, study)
        return store.epochs_frame(study=study)


def report(
    *,
    db: str | None = None,
    study: str | None = None,
    out: str | Path | None = None,
    rebuild: bool = False,
    console: Console | None = None,
) -> list[Path]:
    """Write ``OUT/<study>/report.html`` (and figures) for one study or all of them.

    A report built from what the store still holds (the same runs, curves,
    results and study file, drawn by the same code) is left as it is, and
    ``console`` says so; ``rebuild`` writes it anyway.
    """
    from minarch.execute import writable_dir

    console = console or Console(stderr=True)
    with _existing(db) as store:
        _check_study(store, study)
        names = _names(store, study)
        reports = writable_dir(Path(out) if out else DEFAULT_REPORTS, "out")
        return [_report(store, name, reports, console, rebuild=rebuild) for name in names]


def remove(
    *,
    study: str,
    db: str | None = None,
    failed: bool = False,
    run_ids: Sequence[str] = (),
    dry_run: bool = False,
) -> pd.DataFrame:
    """Delete runs of ``study``: its failed ones, the ``run_ids``, or (neither given) all.

    Every run derived from a deleted run (pruned, fine-tuned, retrained,
    quantization-aware) goes too, since it cannot train or be analysed without
    its parent, and so do their curves, evaluations and weight files. A run
    another study also holds only leaves this one; a study left without runs
    is deleted; a running run is an error. Only files in the store's own
    weights folder are deleted, never a file another store may record.
    Returns the rows of ``runs`` deleted, or with ``dry_run`` the ones that
    would be, deleting nothing.
    """
    with _existing(db) as store:
        _check_study(store, study)
        runs = store.runs_frame(study=study)
        unknown = sorted(set(run_ids) - set(runs["run_id"]))
        if unknown:
            raise MinarchError(f"study {study!r} has no run {', '.join(unknown)}")
        chosen = set(run_ids)
        if failed:
            chosen |= set(runs.loc[runs["state"] == "failed", "run_id"])
        elif not run_ids:
            chosen = set(runs["run_id"])
        while True:  # derived runs, and runs derived from them
            derived = set(runs.loc[runs["parent_id"].isin(chosen), "run_id"]) - chosen
            if not derived:
                break
            chosen |= derived
        doomed = runs[runs["run_id"].isin(chosen)].reset_index(drop=True)
        running = int((doomed["state"] == "running").sum())
        if running:  # its trainer would find it gone
            raise MinarchError(
                f"{running} of the runs to delete are running: stop their training first "
                "(a run left running by a killed process is pending again after the next run)"
            )
        if not dry_run and len(doomed):
            for artifact in store.delete_runs(study, list(doomed["run_id"])):
                path = Path(artifact.path)
                if path.parent.name == store.id:  # older stores shared one folder: keep those
                    path.unlink(missing_ok=True)
    return doomed


def has_study(name: str, *, db: str | None = None) -> bool:
    """Whether the store exists and holds study ``name``; never creates a store."""
    url = db or default_db_url()
    if _missing_file(url) is not None:
        return False
    with _opened(url) as store:
        return name in store.studies()


def families() -> pd.DataFrame:
    """Every model family: its study-file fields with their defaults, and what it builds.

    A field without a default must be given in the study file; a field with a
    fixed set of values lists them.
    """
    from minarch.models import config_class, family_names, summary

    rows = [
        {"family": name, "fields": _fields(config_class(name)), "description": summary(name)}
        for name in family_names()
    ]
    return pd.DataFrame(rows, columns=["family", "fields", "description"])


def _fields(config: type) -> str:
    """``depth=2, channels, pooling=max (max|avg|none)``: each field, its default, its choices."""
    parts = []
    for name, field in config.model_fields.items():
        text = name if field.is_required() else f"{name}={_yaml(field.default)}"
        if get_origin(field.annotation) is Literal:
            text += f" ({'|'.join(map(_yaml, get_args(field.annotation)))})"
        parts.append(text)
    return ", ".join(parts)


def _yaml(value: object) -> str:
    """A value as a study file writes it: true, null, 3, max."""
    return value if isinstance(value, str) else json.dumps(value)


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
    """Convergence regimes and minimal parameters (docs/methods.md A.1–A.2) per study.

    Each study is analysed with the thresholds of its own ``analysis:`` section.
    """
    from minarch.analysis import analyze_study

    with _existing(db) as store:
        _check_study(store, study)
        return {name: analyze_study(store, name) for name in _names(store, study)}


def table(name: str, *, db: str | None = None, study: str | None = None) -> pd.DataFrame:
    """One analysis table (a name of ``minarch.tables.TABLES``) for one study or all, with a
    ``study`` column.

    Each study is analysed with the thresholds of its own ``analysis:`` section;
    ``frame.attrs["thresholds"]`` holds them per study, and ``frame.attrs["notes"]``
    per study the configurations left out because a seed has not finished, and
    whether its selections were made on the test split, with why that matters.
    """
    from minarch.analysis import TableInput, compute_table

    entry = analysis_table(name)
    with _existing(db) as store:
        _check_study(store, study)
        inputs = [TableInput(store, each) for each in _names(store, study)]
        tables = {each.name: compute_table(name, each) for each in inputs}
        tables = _present(tables, (entry.lacks, entry.why_absent), study)
        inputs = [each for each in inputs if each.name in tables]
        thresholds = {each.name: each.thresholds.model_dump() for each in inputs}
        notes = {each.name: note for each in inputs if (note := each.notes)}
    frames = [f.assign(study=each) for each, f in tables.items()]
    frame = pd.concat([f[["study", *f.columns.drop("study")]] for f in frames], ignore_index=True)
    frame.attrs["thresholds"] = thresholds  # what each study was analysed with
    frame.attrs["notes"] = notes
    return frame


def compression(*, db: str | None = None, study: str | None = None) -> pd.DataFrame:
    """One row per pruning or quantization result, beside its uncompressed run."""
    from minarch.analysis import compression_results

    with _existing(db) as store:
        _check_study(store, study)
        frames = {each: compression_results(store, each) for each in _names(store, study)}
    return pd.concat(_present(frames, _NO_COMPRESSION, study).values(), ignore_index=True)


def _present(
    frames: dict[str, pd.DataFrame], absent: tuple[str, str], study: str | None
) -> dict[str, pd.DataFrame]:
    """The studies' non-empty ``frames``; none at all is an error saying what is missing
    (``absent``: what a study without them lacks, and why that usually is)."""
    present = {each: frame for each, frame in frames.items() if not frame.empty}
    if not present:
        what, why = absent
        raise MinarchError(
            f"study {study!r} has no {what}{why}" if study else f"no study in the store has {what}"
        )
    return present


def _report(
    store: Store, study: str, reports: Path, console: Console, *, rebuild: bool = False
) -> Path:
    """Write the study's report unless the one in its folder is up to date."""
    from minarch.analysis import TableInput
    from minarch.reporting import stamp

    stored, folder = TableInput(store, study), reports / study
    inputs = {
        "runs": stored.runs,
        "epochs": stored.epochs,
        "title": f"minarch study: {study}",
        "study": stored.spec,
        "compression": stored.compression,
        "png": True,
    }
    if rebuild:
        stamp.forget(folder)
    elif stamp.is_current(folder, stamp.fingerprint(**inputs)):
        console.print(
            f"{folder / stamp.REPORT} is up to date: nothing it is built from changed "
            "(`minarch report --rebuild` writes it again)",
            highlight=False,
            soft_wrap=True,
        )
        return folder / stamp.REPORT
    from minarch.reporting import write_report  # plotly and the sections: seconds to load

    return write_report(out_dir=folder, **inputs)


def _check_study(store: Store, study: str | None) -> None:
    if study is not None and study not in store.studies():
        known = ", ".join(store.studies()) or "none yet"
        raise OptionError("study", study, f"no such study in the store (known: {known})")


def _names(store: Store, study: str | None) -> list[str]:
    """The one study asked for, or every study in the store (which must have one)."""
    names = [study] if study else store.studies()
    if not names:
        raise StoreError("the store has no studies yet: train one into it first")
    return names


def _opened(url: str) -> closing[Store]:
    """``with _opened(url) as store``: closed however the block ends."""
    return closing(open_store(url))


def _existing(db: str | None) -> closing[Store]:
    """``_opened`` for reading: a missing SQLite file is an error, not a new empty store."""
    url = db or default_db_url()
    missing = _missing_file(url)
    if missing is not None:
        raise StoreError(
            f"no run store at {missing}: nothing has been trained into it yet "
            "(train a study first, or name an existing store)"
        )
    return _opened(url)


def _missing_file(url: str) -> Path | None:
    """The file of a SQLite URL if it does not exist yet; None for anything else."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None  # open_store says what is wrong with the URL
    if parsed.get_backend_name() != "sqlite" or _in_memory(url):
        return None
    path = Path(parsed.database or "").expanduser()
    return None if path.exists() else path


def _in_memory(url: str) -> bool:
    """Whether ``url`` is a SQLite database in memory, gone when the process ends."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return False  # open_store says what is wrong with the URL
    database = parsed.database or ""
    in_memory = database in ("", ":memory:") or database.startswith("file:")
    return parsed.get_backend_name() == "sqlite" and in_memory
