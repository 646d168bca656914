"""Shared test fixtures."""

from __future__ import annotations

import fcntl
import glob
import itertools
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from minarch.data.files import expected_files
from minarch.data.registry import SOURCES, get_entry

# --- Real-data tests: skipped, with one reason, where the official files are absent -----

REAL_DATA_REASON = (
    "real-data test: set MINARCH_DATA_DIR to a folder holding the official dataset files "
    "(`minarch datasets check` lists what goes where; tests never download)"
)


def real_data_dir() -> Path | None:
    """``$MINARCH_DATA_DIR`` when it is set: the real-data tests read only from there."""
    folder = os.environ.get("MINARCH_DATA_DIR")
    return Path(folder) if folder else None


def _has_files(folder: Path | None, names: tuple[str, ...]) -> bool:
    """Every official file of ``names`` is in ``folder`` (presence only: digests are slow)."""
    if folder is None:
        return False
    for name in names:
        get_entry(name)  # loads the dataset catalog, which fills SOURCES
    return all(
        path.is_file()
        for name in names
        for path in expected_files(folder / SOURCES[name].subdir, SOURCES[name])
    )


def pytest_runtest_setup(item: pytest.Item) -> None:
    """``@pytest.mark.real_data("mnist", ...)``: skip unless those datasets' files are present."""
    for marker in item.iter_markers("real_data"):
        if not _has_files(real_data_dir(), marker.args):
            pytest.skip(REAL_DATA_REASON)


# --- PostgreSQL: a throwaway server for the store's backend tests ----------------------


def _postgres_bindir() -> Path | None:
    """Debian keeps the server binaries off PATH, under /usr/lib/postgresql/<major>/bin."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    initdb = found[-1] if found else shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Path]:
    """Start a PostgreSQL server on a unix socket only; yields the socket directory.

    initdb refuses to run as root, so as root the server runs as the ``postgres`` user.
    """
    bindir = _postgres_bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL server binary (initdb) installed")
    as_user: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="minarch-pg-"))
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(root)
            pytest.skip("running as root and there is no 'postgres' user to run the server")
        os.chown(root, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data = root / "data"

    def pg(*args: str) -> None:
        subprocess.run([*as_user, *args], check=True, capture_output=True, text=True)

    try:
        pg(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
        options = f"-c listen_addresses='' -k {root} -c fsync=off -c max_connections=100"
        pg(
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(root / "log"),
            "-w",
            "-o",
            options,
            "start",
        )
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"could not start PostgreSQL: {exc.stderr or exc.stdout}")
    try:
        yield root
    finally:
        subprocess.run(
            [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: Path) -> Iterator[str]:
    """A fresh, empty database on the session's server, as a SQLAlchemy URL."""
    psycopg = pytest.importorskip("psycopg")
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin = f"host={postgres_server} user=postgres dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+psycopg://postgres@/{name}?host={postgres_server}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models: a second thread buys little and on a busy machine costs several-fold."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def ctrl_c() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt during the test, as in a terminal.

    A process started in the background by a non-interactive shell inherits
    SIGINT ignored, and Python then installs no handler of its own.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.hookimpl(trylast=True)  # after ``-m`` has deselected
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``long(seconds)`` start first, spread over the xdist workers.

    A long test that starts late ends the whole run late. ``--dist worksteal`` gives
    each worker a contiguous share of the items and steals from the shares' tails,
    so the long tests go, longest first, to the heads of the shares with the least
    long work so far.
    """

    def seconds(item: pytest.Item) -> float:
        marker = item.get_closest_marker("long")
        return marker.args[0] if marker else 0

    long = sorted((item for item in items if seconds(item)), key=seconds, reverse=True)
    if not long:
        return
    workers = getattr(config, "workerinput", {}).get("workercount", 1)
    heads: list[list[pytest.Item]] = [[] for _ in range(workers)]
    loads = [0.0] * workers
    for item in long:
        least = loads.index(min(loads))
        heads[least].append(item)
        loads[least] += seconds(item)
    rest = iter([item for item in items if not seconds(item)])
    ordered, start = [], 0
    for worker, head in enumerate(heads):  # the shares' sizes, as worksteal cuts them
        size = (len(items) - start) // (workers - worker)
        ordered += head + list(itertools.islice(rest, max(0, size - len(head))))
        start += size
    items[:] = ordered + list(rest)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Name every skipped test (``-ra`` groups them by reason and line only)."""
    skipped = terminalreporter.stats.get("skipped", [])
    if skipped:
        terminalreporter.section(f"{len(skipped)} skipped tests")
        for report in skipped:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
            terminalreporter.line(f"{report.nodeid}  ({reason.removeprefix('Skipped: ')})")


# --- A store with every analysis table -------------------------------------------------


@pytest.fixture(scope="session")
def full_store(tmp_path_factory) -> tuple[Path, str]:
    """``tests.cli.FULL_STUDY`` trained and evaluated: (its folder, its store's URL).

    Trained once per test run: the first xdist worker to need it trains it under a
    file lock, the others wait for it. Tests write their reports to folders of
    their own: the folder is shared.
    """
    from rich.console import Console

    import minarch
    from tests.cli import FULL_STUDY

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # this run's folder, above each worker's own
    folder, db = root / "full", f"sqlite:///{root / 'full' / 'runs.db'}"
    with open(root / "full.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / "trained").exists():
            shutil.rmtree(folder, ignore_errors=True)  # what a failed worker left
            folder.mkdir()
            (folder / "full.yaml").write_text(FULL_STUDY)
            quiet = Console(quiet=True)
            minarch.run(
                folder / "full.yaml", db=db, device="cpu", workers=1, report=False, console=quiet
            )
            (folder / "trained").touch()
    return folder, db
