"""The command line: a thin layer over minarch.api.

Bad input exits with code 2 and one line on stderr; a bug keeps its traceback.
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from minarch.errors import Interrupted, MinarchError
from minarch.tables import TABLES

app = typer.Typer(
    help="Find the smallest network that reliably learns an image-classification task.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
datasets_app = typer.Typer(
    help="Known datasets and the files in the data folder.", no_args_is_help=True
)
app.add_typer(datasets_app, name="datasets")


def _show_version(value: bool) -> None:
    if value:
        from minarch import __version__

        stdout.print(f"minarch {__version__}")
        raise typer.Exit()


@app.callback(context_settings={"help_option_names": ["-h", "--help"]})
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Find the smallest network that reliably learns an image-classification task."""


stderr = Console(stderr=True)
stdout = Console()

Db = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="MINARCH_DB",
        show_default="sqlite:///./minarch.db",
        help="SQLAlchemy URL of the run store (SQLite file or PostgreSQL).",
    ),
]
DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="MINARCH_DATA_DIR",
        show_default="per-user cache",
        help="Folder the datasets are read from.",
    ),
]
StudyName = Annotated[str | None, typer.Option("--study", help="Only this study.")]
OutDir = Annotated[
    Path | None,
    typer.Option(
        "--out",
        show_default="./minarch-reports",
        help="Reports go to OUT/<study>/report.html and OUT/<study>/figures/.",
    ),
]


def _api():
    """The API (and torch) is imported only by commands that need it, not by --help."""
    from minarch import api

    return api


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class ExecutorKind(str, Enum):
    local = "local"
    ray = "ray"


class Format(str, Enum):
    csv = "csv"
    json = "json"
    parquet = "parquet"


FrameFormat = Annotated[Format, typer.Option("--format", help="Output format.")]
Output = Annotated[
    Path | None,
    typer.Option(
        "--output", "-o", help="Write to this file instead of stdout (required for parquet)."
    ),
]
AnalysisTable = Enum("AnalysisTable", {name.replace("-", "_"): name for name in TABLES}, type=str)


class TextFormat(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


@app.command()
def run(
    study: Annotated[str, typer.Argument(help="Study YAML file or built-in name.")] = "quickstart",
    db: Db = None,
    data_dir: DataDir = None,
    out: OutDir = None,
    artifacts: Annotated[
        Path | None,
        typer.Option(
            envvar="MINARCH_ARTIFACTS",
            show_default="minarch-artifacts beside a SQLite store, else ./minarch-artifacts",
            help="Folder for the trained weights.",
        ),
    ] = None,
    device: Annotated[Device, typer.Option(help="Where to train.")] = Device.auto,
    workers: Annotated[
        str,
        typer.Option(
            help="Train packs in this many processes; auto: one per usable CPU core or GPU."
        ),
    ] = "auto",
    threads: Annotated[
        int | None,
        typer.Option(
            help="Intra-op threads per pack (default 1 on a CPU: fast under load and "
            "reproducible; other counts change a run's last digits)."
        ),
    ] = None,
    download: Annotated[
        bool,
        typer.Option(
            help="Download missing dataset files from their official URLs (checksums verified)."
        ),
    ] = True,
    executor: Annotated[
        ExecutorKind,
        typer.Option(
            help="local: this machine (--workers); ray: one Ray task per pack "
            "(pip install 'minarch[ray]')."
        ),
    ] = ExecutorKind.local,
    address: Annotated[
        str | None,
        typer.Option(
            help="Ray: the cluster to join, auto or HOST:PORT.",
            show_default="a new Ray instance on this machine",
        ),
    ] = None,
    gpus_per_pack: Annotated[
        float | None,
        typer.Option(
            help="Ray: GPUs each pack asks for; 0.25 puts four packs on one GPU.",
            show_default="study file's execution section, else 1 on a cluster with GPUs",
        ),
    ] = None,
    cpus_per_pack: Annotated[
        float | None,
        typer.Option(
            help="Ray: CPUs each pack asks for.",
            show_default="study file's execution section, else 1",
        ),
    ] = None,
) -> None:
    """Train every run of STUDY that is not done yet, then write its report.

    Ctrl-C or SIGTERM stops cleanly: unfinished runs go back to pending and the
    next `minarch run` resumes them.
    """
    try:
        outcome = _api().run(
            study,
            db=db,
            data_dir=data_dir,
            out=out,
            artifacts=artifacts,
            device=device.value,
            download=download,
            workers=workers,
            threads=threads,
            executor=executor.value,
            address=address,
            gpus_per_pack=gpus_per_pack,
            cpus_per_pack=cpus_per_pack,
            console=stderr,
        )
    except Interrupted as exc:  # typer would turn it into "Aborted!" and exit 1
        left = "" if exc.remaining is None else f"{exc.remaining} runs "
        stderr.print(f"interrupted: {left}will resume on the next `minarch run`")
        raise typer.Exit(exc.exit_code) from None
    summary = outcome.summary
    counts = ", ".join(f"{n} {state}" for state, n in sorted(summary.trained.items()))
    stderr.print(f"trained {counts or 'nothing (all runs were done)'} in {summary.seconds:.1f} s")
    if outcome.report:
        stdout.print(f"report: {outcome.report}")
    if summary.trained.get("failed"):
        stderr.print(
            f"some runs failed; their errors are in the 'message' column of "
            f"`minarch runs --study {outcome.study}`; `minarch run` retries them"
        )
    if summary.remaining:
        stderr.print(
            f"{summary.remaining} runs are still pending (their parent runs are not finished); "
            "`minarch run` trains them"
        )
    if summary.trained.get("failed") or summary.remaining:
        raise typer.Exit(1)


@app.command()
def plan(
    study: Annotated[str, typer.Argument(help="Study YAML file or built-in name.")],
    db: Db = None,
    data_dir: DataDir = None,
) -> None:
    """Validate STUDY and show how many runs and packs it expands to, without training.

    Also says how many runs the store already has finished (if the store exists)
    and whether each dataset's files are in the data folder.
    """
    api = _api()
    the_plan = api.plan(study)
    finished = api.finished_runs(the_plan, db=db)
    table = Table(title=f"study {the_plan.study.name}")
    for column in ("dataset", "family", "architectures", "params", "runs", "packs", "done"):
        table.add_column(column, justify="left" if column in ("dataset", "family") else "right")
    groups: dict[tuple[str, str], list] = {}
    for planned in the_plan.runs:
        key = (planned.config.dataset.name, planned.config.model.family)
        groups.setdefault(key, []).append(planned)
    for (dataset, family), runs in groups.items():
        params = sorted({r.params for r in runs})
        table.add_row(
            dataset,
            family,
            str(len({r.label for r in runs})),
            f"{params[0]:,}–{params[-1]:,}",
            str(len(runs)),
            str(len({r.config.pack_key for r in runs})),
            str(sum(r.config.id in finished for r in runs)),
        )
    stdout.print(table)
    packs = len(the_plan.packs())
    stdout.print(f"{len(the_plan.runs)} runs in {packs} packs, {len(finished)} done")
    data = api.datasets(data_dir=data_dir).set_index("dataset")["status"]
    needed = sorted({r.config.dataset.name for r in the_plan.runs})
    stdout.print("data: " + ", ".join(f"{name} {data[name]}" for name in needed))


@app.command()
def status(db: Db = None) -> None:
    """Per study: runs pending, running, done, failed and diverged."""
    frame = _api().status(db=db)
    if frame.empty:
        stdout.print("no studies in the store yet (minarch run STUDY)")
        return
    _print_frame(frame)


@app.command()
def runs(
    db: Db = None,
    study: StudyName = None,
    format: FrameFormat = Format.csv,
    output: Output = None,
) -> None:
    """One row per run: configuration, parameters, FLOPs, final and best metrics, state."""
    _write_frame(_api().runs(db=db, study=study), format, output)


def _write_frame(frame, format: Format, output: Path | None) -> None:
    if format is Format.parquet and output is None:
        raise MinarchError("--format parquet: give --output FILE (parquet is binary)")
    target = output or sys.stdout
    if format is Format.csv:
        frame.to_csv(target, index=False)
    elif format is Format.json:
        text = frame.to_json(orient="records", indent=1, date_format="iso")
        output.write_text(text) if output else sys.stdout.write(text + "\n")
    else:
        frame.to_parquet(output, index=False)


@app.command()
def analyze(
    db: Db = None,
    study: StudyName = None,
    table: Annotated[
        AnalysisTable,
        typer.Option(help="Which table: " + "; ".join(f"{k}: {v}" for k, v in TABLES.items())),
    ] = AnalysisTable.minimal,
    format: Annotated[TextFormat, typer.Option("--format", help="Output format.")] = (
        TextFormat.table
    ),
) -> None:
    """Analysis tables per study: regimes, minimal parameters, pruning, quantization, hpspace."""
    frame = _api().table(table.value, db=db, study=study)
    if format is TextFormat.csv:
        frame.to_csv(sys.stdout, index=False)
    elif format is TextFormat.json:
        sys.stdout.write(frame.to_json(orient="records", indent=1) + "\n")
    else:
        _print_frame(frame, title=table.value)
        for name, thresholds in frame.attrs["thresholds"].items():
            stdout.print(f"[dim]{name}: thresholds {thresholds}[/dim]")


@app.command()
def compression(
    db: Db = None,
    study: StudyName = None,
    format: FrameFormat = Format.csv,
    output: Output = None,
) -> None:
    """One row per pruning or quantization result, beside its uncompressed run."""
    _write_frame(_api().compression(db=db, study=study), format, output)


@app.command()
def report(db: Db = None, study: StudyName = None, out_dir: OutDir = None) -> None:
    """Write the HTML report (and PNG figures) for one study or every study."""
    for path in _api().report(db=db, study=study, out=out_dir):
        stdout.print(f"report: {path}")


@app.command()
def bench(
    workload: Annotated[
        list[str] | None,
        typer.Option(help="mlp-grid, cnn, resnet20 or vit; repeat for several (default: all)."),
    ] = None,
    device: Annotated[Device, typer.Option(help="Where to train.")] = Device.auto,
    quick: Annotated[
        bool, typer.Option(help="Tiny sizes: a smoke test, not a measurement.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Training throughput of the pack engine against plain PyTorch, in the same process."""
    import json

    import pandas as pd

    from minarch.bench import run_benchmarks
    from minarch.execute import resolve_device

    target = resolve_device(device.value).type
    rows = run_benchmarks(workload, device=target, quick=quick)
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=1) + "\n")
        return
    columns = [
        "workload",
        "members",
        "engine",
        "baseline_samples_per_s",
        "minarch_samples_per_s",
        "speedup",
        "peak_fraction",
    ]
    _print_frame(pd.DataFrame(rows)[columns], title=f"pack engine vs plain PyTorch ({target})")


@datasets_app.command("list")
def datasets_list(data_dir: DataDir = None) -> None:
    """Known datasets and whether their files are present in the data folder."""
    _print_datasets(
        data_dir, columns=("dataset", "input_shape", "classes", "status", "description")
    )


@datasets_app.command("check")
def datasets_check(data_dir: DataDir = None) -> None:
    """Verify the checksum of every dataset file present in the data folder."""
    _print_datasets(data_dir, columns=("dataset", "files", "present", "checksums_ok", "status"))


def _print_datasets(data_dir: Path | None, columns: tuple[str, ...]) -> None:
    frame = _api().datasets(data_dir=data_dir)[list(columns)]
    _print_frame(frame, title=f"data folder: {data_dir or _api().default_data_dir()}")


def _print_frame(frame, title: str | None = None) -> None:
    """A DataFrame as a terminal table: numbers right-aligned, floats to 4 digits.

    A table wider than the terminal would have every cell cut to a few
    characters, so it is printed as one block of (column, value) per row
    instead, like psql's expanded display.
    """
    table = Table(title=title)
    for column in frame.columns:
        numeric = frame[column].dtype.kind in "iuf"
        table.add_column(str(column), justify="right" if numeric else "left")
    for row in frame.itertuples(index=False):
        table.add_row(*(_cell(v) for v in row))
    unlimited = stdout.options.update_width(sys.maxsize)
    if stdout.measure(table, options=unlimited).minimum <= stdout.width:
        stdout.print(table)
        return
    for number, row in enumerate(frame.itertuples(index=False), start=1):
        block = Table(
            title=f"{title} · row {number}" if title else f"row {number}",
            title_justify="left",
            show_header=False,
        )
        block.add_column(style="bold")
        block.add_column()
        for column, value in zip(frame.columns, row, strict=True):
            block.add_row(str(column), _cell(value))
        stdout.print(block)


def _cell(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def main() -> None:
    """Entry point: user errors become one line and exit code 2."""
    try:
        app()
    except MinarchError as exc:
        stderr.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        stderr.print("interrupted")
        sys.exit(130)
