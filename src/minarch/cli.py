"""The command line: a thin layer over minarch.api.

Bad input exits with code 2 and one line on stderr; a bug keeps its traceback.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from minarch.errors import Interrupted, MinarchError, OptionError
from minarch.plugins import add_plugins
from minarch.tables import TABLES
from minarch.terminal import duration, print_analysis, print_frame, whole_numbers

if TYPE_CHECKING:
    import pandas as pd

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
    plugins: Annotated[
        list[str] | None,
        typer.Option(
            "--plugin",
            metavar="MODULE",
            help="Import MODULE, which registers model families or datasets (repeatable; "
            "also $MINARCH_PLUGINS, comma-separated; installed packages are found by "
            "their minarch.plugins entry points).",
        ),
    ] = None,
) -> None:
    """Find the smallest network that reliably learns an image-classification task."""
    if plugins:
        add_plugins(plugins)


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
MaxRuns = Annotated[
    int,
    typer.Option(help="Refuse a study of more runs than this (counted before expanding it)."),
]
Force = Annotated[
    bool,
    typer.Option(
        "--force",
        help="Go on when the data and the largest pack are estimated to need more memory "
        "than this machine has.",
    ),
]
StudyName = Annotated[str | None, typer.Option("--study", help="Only this study.")]
Yes = Annotated[
    bool, typer.Option("--yes", "-y", help="Delete without asking (needed without a terminal).")
]
Overrides = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="PATH=VALUE",
        help="Set a value of the study file, e.g. training.epochs=3, seeds=[0,1], "
        "models.0.width=[4,8] (a YAML value; repeatable). A changed configuration is a new run.",
    ),
]
OutDir = Annotated[
    Path | None,
    typer.Option(
        "--out",
        show_default="./minarch-reports",
        help="Reports go to OUT/<study>/report.html and OUT/<study>/figures/.",
    ),
]


RUN_OPENING = "planning (PyTorch and data load only for runs left to train)"
"""What ``minarch run`` says first, after the study's name."""


def _api():
    """The API (and torch) is imported only by commands that need it, not by --help."""
    from minarch import api

    return api


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class Engine(str, Enum):
    auto = "auto"
    plain = "plain"
    fused = "fused"
    batched = "batched"


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
    overrides: Overrides = None,
    rerun_failed: Annotated[
        bool,
        typer.Option(
            "--rerun-failed",
            help="First delete the study's failed runs and the runs derived from them "
            "(asks; see --yes), so they train from nothing.",
        ),
    ] = False,
    yes: Yes = False,
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
    max_runs: MaxRuns = 100_000,
    force: Force = False,
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
    engine: Annotated[
        Engine | None,
        typer.Option(
            help="Pack engine: plain (one member after another), fused (members together, "
            "plain's numbers bit for bit), batched (one batched forward; the GPU's), "
            "auto (by the rule in the README).",
            show_default="study file's execution.engine, else auto",
        ),
    ] = None,
    deterministic: Annotated[
        bool | None,
        typer.Option(
            "--deterministic/--no-deterministic",
            help="Ask torch for deterministic algorithms (GPU: slower; see the README's "
            "'Speed and reproducibility').",
            show_default="study file's execution.deterministic, else off",
        ),
    ] = None,
    report: Annotated[
        bool,
        typer.Option(
            help="Write the report after training; --no-report trains only (the jobs of "
            "an array but the last; `minarch report` writes it later).",
        ),
    ] = True,
) -> None:
    """Train every run of STUDY that is not done yet, then write its report.

    Ctrl-C or SIGTERM stops cleanly: unfinished runs go back to pending and the
    next `minarch run` resumes them. A failed run is trained again anyway;
    --rerun-failed deletes it (with its weights and derived runs) first.
    """
    # First output at once: importing PyTorch and loading datasets take seconds (more under load).
    stderr.print(f"study {study}: {RUN_OPENING}", highlight=False)
    if rerun_failed:
        name = _api().load_study(study, overrides=overrides or ()).name
        if _api().has_study(name, db=db):
            _remove(db, name, failed=True, run_ids=(), yes=yes)
    try:
        outcome = _api().run(
            study,
            overrides=overrides or (),
            db=db,
            data_dir=data_dir,
            out=out,
            artifacts=artifacts,
            device=device.value,
            download=download,
            workers=workers,
            threads=threads,
            max_runs=max_runs,
            force=force,
            executor=executor.value,
            address=address,
            gpus_per_pack=gpus_per_pack,
            cpus_per_pack=cpus_per_pack,
            engine=None if engine is None else engine.value,
            deterministic=deterministic,
            report=report,
            console=stderr,
        )
    except Interrupted as exc:  # typer would turn it into "Aborted!" and exit 1
        left = "" if exc.remaining is None else f"{exc.remaining} runs "
        stderr.print(f"interrupted: {left}will resume on the next `minarch run`")
        raise typer.Exit(exc.exit_code) from None
    summary = outcome.summary
    counts = ", ".join(f"{n} {state}" for state, n in sorted(summary.trained.items()))
    if summary.elsewhere:
        counts += f" ({summary.elsewhere} of them by other processes)"
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
    study: Annotated[str, typer.Argument(help="Study YAML file or built-in name.")] = "quickstart",
    overrides: Overrides = None,
    db: Db = None,
    data_dir: DataDir = None,
    max_runs: MaxRuns = 100_000,
    force: Force = False,
    time: Annotated[
        bool,
        typer.Option(
            "--time",
            help="Time a few training steps of every pack left to train on --device and "
            "estimate how long they take (evaluation not included).",
        ),
    ] = False,
    device: Annotated[Device, typer.Option(help="Where --time measures.")] = Device.auto,
) -> None:
    """Validate STUDY and show how many runs and packs it expands to, without training.

    Also says how many runs the store already has finished (if the store exists)
    and whether each dataset's files are in the data folder. With --time, how
    long training the runs not done yet would take here, from step times
    measured on this machine.
    """
    api = _api()
    the_plan = api.plan(study, overrides=overrides or (), max_runs=max_runs, force=force)
    finished = api.finished_runs(the_plan, db=db)
    left = replace(the_plan, runs=tuple(r for r in the_plan.runs if r.config.id not in finished))
    estimate = api.estimate_time(left, device=device.value) if time and left.runs else None
    seconds: dict[tuple[str, str], float] = defaultdict(float)
    if estimate is not None:
        for row in estimate.frame().itertuples():
            key = (row.dataset, row.family)
            seconds[key] += row.seconds
    table = Table(title=f"study {the_plan.study.name}")
    columns = ["dataset", "family", "architectures", "params", "runs", "packs", "done"]
    for column in columns + (["training"] if estimate else []):
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
            *([duration(seconds[dataset, family])] if estimate else []),
        )
    stdout.print(table)
    packs = len(the_plan.packs())
    stdout.print(f"{len(the_plan.runs)} runs in {packs} packs, {len(finished)} done")
    if limit := the_plan.extension_limit():
        stdout.print(f"extensions (grid, sizes) can add at most {limit:,} runs")
    if time and not left.runs:
        stdout.print("nothing left to train: training time 0 s")
    if estimate is not None:
        workers, total = estimate.workers, estimate.seconds
        spread = f", about {duration(total / workers)} on {workers}" if workers > 1 else ""
        stdout.print(
            f"training the {len(left.runs)} runs left on {estimate.device}: {duration(total)} "
            f"on one worker{spread} (from measured step times; evaluation not included)",
            highlight=False,
        )
    if overrides:
        stdout.print(f"with {', '.join(overrides)}", highlight=False, markup=False)
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
    print_frame(stdout, frame)
    for row in frame[frame["versions"] > 1].itertuples():
        stdout.print(
            f"study {row.study}: its runs were trained by {row.versions} versions of minarch "
            f"(columns env.minarch and env.git of `minarch runs --study {row.study}`)",
            highlight=False,
        )


def _frame_command(name: str, frame: Callable[..., pd.DataFrame], help: str) -> None:
    """A command that writes one of the API's frames (of one study or all) as csv, json or parquet.

    ``frame`` takes ``db`` and ``study``; it is called only when the command runs.
    """

    def command(
        db: Db = None,
        study: StudyName = None,
        format: FrameFormat = Format.csv,
        output: Output = None,
    ) -> None:
        _check_output(format, output)
        _write_frame(frame(db=db, study=study), format, output)

    command.__doc__ = help
    app.command(name)(command)


_frame_command(
    "runs",
    lambda **where: whole_numbers(_api().runs(**where)),
    "One row per run: configuration, parameters, FLOPs, final and best metrics, state.",
)
_frame_command(
    "epochs",
    lambda **where: _api().epochs(**where),
    "One row per run and epoch: the training curves (losses, accuracies, learning rate).",
)
_frame_command(
    "compression",
    lambda **where: _api().compression(**where),
    "One row per pruning or quantization result, beside its uncompressed run.",
)


def _check_output(format: Format, output: Path | None) -> None:
    """Before any work: parquet is binary, so it goes to a file, which must be one."""
    if format is Format.parquet and output is None:
        raise MinarchError("--format parquet: give --output FILE (parquet is binary)")
    if output is not None and output.is_dir():
        raise MinarchError(f"--output {output}: is a folder, expected a file name")
    if output is not None and not output.parent.is_dir():
        raise MinarchError(f"--output {output}: folder {output.parent} does not exist")


def _write_frame(frame, format: Format, output: Path | None) -> None:
    target = output or sys.stdout
    try:
        if format is Format.csv:
            frame.to_csv(target, index=False)
        elif format is Format.json:
            text = frame.to_json(orient="records", indent=1, date_format="iso")
            output.write_text(text) if output else sys.stdout.write(text + "\n")
        else:
            frame.to_parquet(output, index=False)
    except OSError as exc:  # read-only, full, or taken away since the check
        raise MinarchError(f"--output {output}: cannot write ({exc.strerror or exc})") from None


@app.command()
def analyze(
    db: Db = None,
    study: StudyName = None,
    table: Annotated[
        AnalysisTable,
        typer.Option(
            help="Which table: " + "; ".join(f"{k}: {v.description}" for k, v in TABLES.items())
        ),
    ] = AnalysisTable.minimal,
    format: Annotated[TextFormat, typer.Option("--format", help="Output format.")] = (
        TextFormat.table
    ),
    wide: Annotated[
        bool,
        typer.Option(
            "--wide", help="Every column under its own name (default: the main ones, compact)."
        ),
    ] = False,
) -> None:
    """Analysis tables per study: regimes, minimal parameters, pruning, quantization, hpspace.

    The table format shows accuracies in percent; csv and json keep every
    column, accuracies as fractions.
    """
    frame = _api().table(table.value, db=db, study=study)
    if format is TextFormat.csv:
        frame.to_csv(sys.stdout, index=False)
    elif format is TextFormat.json:
        sys.stdout.write(frame.to_json(orient="records", indent=1) + "\n")
    else:
        print_analysis(stdout, frame, table.value, wide=wide)


@app.command()
def rm(
    study: Annotated[str, typer.Option("--study", help="The study to delete runs of.")],
    failed: Annotated[bool, typer.Option("--failed", help="Only its failed runs.")] = False,
    run_ids: Annotated[
        list[str] | None, typer.Option("--run", metavar="ID", help="Only this run (repeatable).")
    ] = None,
    yes: Yes = False,
    db: Db = None,
) -> None:
    """Delete runs of a study from the store: all of them, the failed ones, or given ids.

    Runs derived from a deleted run (pruned, fine-tuned, retrained, QAT) are
    deleted with it, as are the curves, evaluations and weight files of all of
    them; a run another study also holds stays there. Asks before deleting.
    """
    if failed and run_ids:
        raise MinarchError("--failed and --run: give one or the other")
    _remove(db, study, failed=failed, run_ids=run_ids or (), yes=yes)


def _interactive() -> bool:
    """Whether someone can answer a question: stdin is a terminal."""
    return sys.stdin.isatty()


def _remove(db: str | None, study: str, *, failed: bool, run_ids, yes: bool) -> None:
    """Show what would be deleted, ask (unless ``yes``), delete it."""
    doomed = _api().remove(study=study, db=db, failed=failed, run_ids=run_ids, dry_run=True)
    if doomed.empty:
        stdout.print(f"study {study}: no {'failed ' if failed else ''}runs to delete")
        return
    states = doomed["state"].value_counts()
    derived = int(doomed["parent_id"].notna().sum())
    what = (
        f"{len(doomed)} runs of study {study} ("
        + ", ".join(f"{n} {state}" for state, n in states.items())
        + (f"; {derived} of them derived runs" if derived else "")
        + ") with their curves, evaluations and weights"
    )
    if not yes:
        if not _interactive():
            raise MinarchError(f"not deleting {what} without confirmation: pass --yes")
        typer.confirm(f"delete {what}?", abort=True)
    _api().remove(study=study, db=db, run_ids=list(doomed["run_id"]))
    stderr.print(f"deleted {what}", highlight=False)


@app.command()
def report(
    db: Db = None,
    study: StudyName = None,
    out_dir: OutDir = None,
    rebuild: Annotated[
        bool,
        typer.Option(
            "--rebuild",
            help="Write the report and every PNG again, even when nothing it is built from "
            "(runs, curves, results, study file, minarch) changed since it was written.",
        ),
    ] = False,
) -> None:
    """Write the HTML report (and PNG figures) for one study or every study.

    A report that is up to date is left as it is, and the command says so.
    """
    for path in _api().report(db=db, study=study, out=out_dir, rebuild=rebuild, console=stderr):
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
    title = f"pack engine vs plain PyTorch ({target})"
    print_frame(stdout, pd.DataFrame(rows)[columns], title=title)


@app.command()
def families() -> None:
    """Model families: the fields a study file gives each (with defaults) and what it builds."""
    print_frame(stdout, _api().families(), title="model families (fields: name=default)")


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
    from minarch.data import default_data_dir

    frame = _api().datasets(data_dir=data_dir)[list(columns)]
    print_frame(stdout, frame, title=f"data folder: {data_dir or default_data_dir()}")


def main() -> None:
    """Entry point: user errors become one line and exit code 2."""
    try:
        app()
    except MinarchError as exc:
        message = exc.flag_message() if isinstance(exc, OptionError) else str(exc)
        stderr.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        stderr.print("interrupted")
        sys.exit(130)
