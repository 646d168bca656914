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

from minarch.analysis import (
    Analysis,
    compression_frame,
    grid_extensions,
    hpspace_tables,
    minimal_bits,
    phases,
    redundancy,
)
from minarch.analysis import analyze as analyze_runs
from minarch.analysis.compression import int8_comparison
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
    evaluate_study,
    execute,
    execute_in_workers,
    plan_study,
)
from minarch.report import write_report
from minarch.spec import StudySpec, parse_study
from minarch.spec import load_study as _load_study
from minarch.spec.derive import oneshot_settings, setting_key
from minarch.store import Store, default_db_url, open_store
from minarch.tables import TABLES

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
    with closing(open_store(url, read_only=True)) as store:  # plan writes to no store
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
        summary = _train(name, configs, store, datasets, url, workers, console)
        evaluate_study(name, the_plan.study, configs, store, datasets, console=console)
        if the_plan.study.hpspace.extend_grid:
            _extend_grid(source, the_plan, store, datasets, url, workers, console, summary)
        path = _report(store, name, reports / name) if reports else None
    return RunOutcome(name, summary, path)


def _train(
    name: str,
    configs: dict,
    store: Store,
    datasets: DatasetCache,
    url: str,
    workers: int,
    console: Console,
) -> Summary:
    if workers == 1:
        return execute(name, configs, store, datasets, artifacts_dir(url), console=console)
    return execute_in_workers(
        name,
        configs,
        store,
        workers=workers,
        db_url=url,
        data_dir=datasets.data_dir,
        download=datasets.download,
        artifacts=artifacts_dir(url),
        device=datasets.device,
        console=console,
    )


def _extend_grid(
    source: str | Path,
    the_plan: Plan,
    store: Store,
    datasets: DatasetCache,
    url: str,
    workers: int,
    console: Console,
    summary: Summary,
) -> None:
    """Grow the lr x wd grid where a 1.0-ROI touches its edge, then train the new points.

    Each round adds at most one row or column per edge; the proposals depend
    only on finished results, so a resumed study extends the same way.
    """
    study, name = the_plan.study, the_plan.study.name
    extra_lr: list[float] = []
    extra_wd: list[float] = []
    for _ in range(study.hpspace.max_extensions):
        runs_frame = store.runs_frame(study=name)
        new_lr, new_wd = grid_extensions(runs_frame, x=max(study.analysis.roi))
        new_lr = [v for v in new_lr if v not in extra_lr]
        new_wd = [v for v in new_wd if v not in extra_wd]
        if not new_lr and not new_wd:
            return
        extra_lr += new_lr
        extra_wd += new_wd
        console.print(
            f"extending the grid: lr {', '.join(f'{v:.3g}' for v in new_lr) or '-'}; "
            f"weight decay {', '.join(f'{v:.3g}' for v in new_wd) or '-'}"
        )
        extended = plan_study(study, the_plan.text, extra_lr=extra_lr, extra_wd=extra_wd)
        configs = {r.config.id: r.config for r in extended.runs}
        store.register_study(name, the_plan.text, [r.new_run() for r in extended.runs])
        more = _train(name, configs, store, datasets, url, workers, console)
        for state, count in more.trained.items():
            summary.trained[state] = summary.trained.get(state, 0) + count
        summary.seconds += more.seconds
        evaluate_study(name, study, configs, store, datasets, console=console)


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


def table(name: str, *, db: str | None = None, study: str | None = None) -> pd.DataFrame:
    """One analysis table (a key of ``TABLES``) for one study or all, with a ``study`` column.

    Each study is analysed with the thresholds of its own ``analysis:`` section;
    ``frame.attrs["thresholds"]`` holds them per study.
    """
    if name not in TABLES:
        raise MinarchError(f"--table: expected one of {', '.join(TABLES)}, got {name!r}")
    with _opened(db or default_db_url()) as store:
        _check_study(store, study)
        names = [study] if study else store.studies()
        frames = [_table(store, name, each).assign(study=each) for each in names]
        thresholds = {each: _stored_study(store, each).analysis.model_dump() for each in names}
    frames = [f[["study", *f.columns.drop("study")]] for f in frames]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    frame.attrs["thresholds"] = thresholds  # what each study was analysed with
    return frame


def _table(store: Store, name: str, study: str) -> pd.DataFrame:
    spec = _stored_study(store, study)
    thresholds = spec.analysis
    runs_frame = store.runs_frame(study=study)
    if name in ("minimal", "architectures", "runs"):
        result = analyze_runs(runs_frame, store.epochs_frame(study=study), thresholds)
        return getattr(result, name)
    if name in ("ellipses", "risk"):
        result = hpspace_tables(runs_frame, rois=thresholds.roi, n_sde=thresholds.ellipse_sde)
        return getattr(result, name)
    frame = _compression_frame(store, study, spec, runs_frame)
    if frame.empty:
        return pd.DataFrame()
    if name == "redundancy":
        return redundancy(frame, delta=thresholds.prune_delta)
    if name == "phases":
        return phases(
            frame, delta=thresholds.prune_delta, collapse_margin=thresholds.collapse_margin
        ).boundaries
    if name == "min-bits":
        return minimal_bits(frame, delta=thresholds.quant_delta)
    return int8_comparison(frame)


def _stored_study(store: Store, name: str) -> StudySpec:
    return parse_study(store.study_spec(name), f"study '{name}' in the store")


def compression(*, db: str | None = None, study: str | None = None) -> pd.DataFrame:
    """One row per pruning or quantization result, beside its uncompressed run."""
    with _opened(db or default_db_url()) as store:
        _check_study(store, study)
        names = [study] if study else store.studies()
        frames = [
            _compression_frame(
                store, each, _stored_study(store, each), store.runs_frame(study=each)
            )
            for each in names
        ]
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _compression_frame(
    store: Store, study: str, spec: StudySpec, runs_frame: pd.DataFrame
) -> pd.DataFrame:
    """The study's compression results under the settings its stored file asks for now.

    Results of settings since dropped from the file (a coarser sparsity grid,
    another tolerance) stay in the store but out of the tables and the report.
    """
    asked = {setting_key(s) for s in oneshot_settings(spec)}
    derived = set(runs_frame.loc[runs_frame["parent_id"].notna(), "run_id"])  # QAT: its own
    evaluations = [
        e for e in store.evaluations(study=study) if e.key in asked or e.run_id in derived
    ]
    return compression_frame(runs_frame, evaluations)


def _report(store: Store, study: str, folder: Path) -> Path:
    runs_frame = store.runs_frame(study=study)
    spec = _stored_study(store, study)
    return write_report(
        runs_frame,
        store.epochs_frame(study=study),
        folder,
        title=f"minarch study: {study}",
        study=spec,
        compression=_compression_frame(store, study, spec, runs_frame),
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
