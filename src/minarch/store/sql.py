"""``SQLStore``: the store on SQLite (default, one file) or PostgreSQL (many machines).

Concurrency rests on short transactions and conditional updates (``UPDATE ...
WHERE state = 'pending'``): on PostgreSQL row locks serialise claimers, on
SQLite every write transaction starts with ``BEGIN IMMEDIATE`` and waits up to
``busy_timeout`` for the file's write lock, so no claimer acts on a stale read.
Creating the schema and registering a study read before they write; on
PostgreSQL an advisory lock serialises them (see ``_serialise``).
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import (
    Connection,
    Engine,
    create_engine,
    delete,
    event,
    func,
    insert,
    make_url,
    select,
    update,
)
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.pool import StaticPool

from minarch.errors import StoreError
from minarch.store import frames, schema
from minarch.store.base import (
    EPOCH_METRICS,
    FINISHED_STATES,
    RUN_STATES,
    ArtifactRecord,
    EvaluationRecord,
    NewRun,
    RunRecord,
    Store,
    owner_is_gone,
)
from minarch.store.schema import (
    artifact_table,
    epoch_table,
    evaluation_table,
    run_table,
    study_run_table,
    study_table,
)

SQLITE_BUSY_TIMEOUT_S = 30
ADVISORY_LOCK = 0x6D696E61726368  # "minarch" in ASCII: PostgreSQL's lock for schema and studies
CHUNK = 500  # ids per IN (...) clause, well under every backend's parameter limit


def default_db_url() -> str:
    """``$MINARCH_DB`` if set, else ``minarch.db`` in the working directory."""
    return os.environ.get("MINARCH_DB") or f"sqlite:///{Path('minarch.db').resolve()}"


def open_store(url: str, *, read_only: bool = False) -> Store:
    """Open (creating the schema if absent) the store at SQLAlchemy URL ``url``.

    Raises ``StoreError`` naming the URL (passwords masked) when it cannot be
    parsed or reached, or when the database was written by a newer minarch or
    holds another program's tables. ``read_only`` writes nothing anywhere (for
    ``minarch plan``): the schema is checked, never created or migrated; a
    missing or empty database reads as an empty store; every write raises.
    """
    shown = mask_url(url)
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:  # ValueError: a port that is not a number
        raise StoreError(f"cannot open store {shown}: not a database URL ({exc})") from None
    if "@" in (parsed.host or ""):  # the driver would name the host: part of the password
        raise StoreError(f"cannot open store {shown}: write '@' in a user or password as %40")
    if read_only and _missing_file(parsed):  # connecting would create it
        return _empty_store(shown)
    try:
        engine = _create_engine(parsed, read_only=read_only)
    except StoreError as exc:
        raise StoreError(f"cannot open store {shown}: {exc}") from None
    except ArgumentError as exc:
        raise StoreError(f"cannot open store {shown}: {_one_line(exc)}") from None
    except ImportError as exc:
        hint = "for PostgreSQL, pip install 'minarch[postgres]' and use postgresql+psycopg://"
        raise StoreError(f"cannot open store {shown}: {exc}; {hint}") from None
    try:
        with engine.connect() as conn:
            conn.execution_options(minarch_begin="DEFERRED" if read_only else "IMMEDIATE")
            with conn.begin():
                has_schema = read_only and schema.check_schema(conn)
                if not read_only:
                    _serialise(conn)
                    schema.ensure_schema(conn, _home(parsed))
    except (DBAPIError, StoreError) as exc:  # DBAPIError: unreachable, or not a database
        engine.dispose()
        reason = _one_line(exc) if isinstance(exc, DBAPIError) else str(exc)
        raise StoreError(f"cannot open store {shown}: {reason}") from None
    if read_only and not has_schema:
        engine.dispose()
        return _empty_store(shown)
    return SQLStore(engine, shown, read_only=read_only, home=_home(parsed))


def mask_url(url: str) -> str:
    """``url`` as it may be printed: every password replaced by ``***``.

    The user part ends at the last ``@`` (a password may hold ``@``, ``:`` or
    ``/``), and query parameters such as ``?password=`` or ``sslpassword=``
    are masked too. Where the text is ambiguous, more is masked, never less.
    """
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:
        userinfo, _, host = rest.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        rest = f"{user}{colon}{'***' if colon else ''}@{host}"
    return _SECRET_PARAMETER.sub(r"\1***", f"{scheme}{sep}{rest}")


_SECRET_PARAMETER = re.compile(r"([?&;][^=&;?]*(?:pass|pwd|secret)[^=&;?]*=)[^&;]*", re.IGNORECASE)


def _in_memory(url: URL) -> bool:
    database = url.database or ""
    return database in ("", ":memory:") or database.startswith("file::memory:")


def _home(url: URL) -> Path | None:
    """The folder of a SQLite file: the store's files are recorded relative to it."""
    if url.get_backend_name() != "sqlite" or _in_memory(url):
        return None
    return Path(url.database or "").expanduser().resolve().parent


def _missing_file(url: URL) -> bool:
    sqlite = url.get_backend_name() == "sqlite"
    return sqlite and not _in_memory(url) and not Path(url.database or "").exists()


def _empty_store(shown: str) -> Store:
    """A read-only store with nothing in it, standing for a database minarch has not written."""
    engine = _create_engine(make_url("sqlite://"))
    with engine.begin() as conn:
        schema.ensure_schema(conn)
    return SQLStore(engine, shown, read_only=True)


@contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """SIGINT and SIGTERM that arrive inside the block are acted on when it ends.

    Python runs signal handlers in the main thread only, so only there can an
    interrupt land inside a transaction; elsewhere the block runs as it is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {
        signum: signal.signal(signum, lambda number, _frame: caught.append(number))
        for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if caught:
            handler = previous[caught[0]]
            if callable(handler):
                handler(caught[0], None)  # Ctrl-C's KeyboardInterrupt, minarch's Interrupted
            elif handler == signal.SIG_DFL:
                signal.raise_signal(caught[0])


def _serialise(conn: Connection) -> None:
    """PostgreSQL: hold minarch's lock until the transaction ends.

    Creating the schema and registering a study read, then write what they
    found missing; two processes doing so at once would both find it missing
    and collide (a duplicate type, a duplicate key). SQLite needs nothing:
    its write transactions begin with the file's write lock held.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(ADVISORY_LOCK)))


def _create_engine(url: URL, *, read_only: bool = False) -> Engine:
    if url.get_backend_name() != "sqlite":
        connect_args: dict[str, Any] = {}
        if url.get_backend_name() == "postgresql":
            connect_args["connect_timeout"] = 10
            if read_only:
                connect_args["options"] = "-c default_transaction_read_only=on"
        return create_engine(url, connect_args=connect_args, pool_pre_ping=True)
    database, in_memory = url.database or "", _in_memory(url)
    if not in_memory and not Path(database).expanduser().resolve().parent.is_dir():
        raise StoreError(f"directory {Path(database).parent} does not exist: create it first")
    if in_memory:  # one connection, or every checkout would see a new empty database
        engine = create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        engine = create_engine(url)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        if read_only:
            cursor.execute("PRAGMA query_only=ON")
        elif not in_memory:  # readers never block the writer, nor it them
            _set_wal(cursor)
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("minarch_begin", "IMMEDIATE")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _set_wal(cursor: Any) -> None:
    """Switch the file to WAL, retrying while another connection is switching it too.

    The switch upgrades a read lock to a write lock; SQLite answers "database
    is locked" at once, without waiting ``busy_timeout``, when another
    connection is mid-upgrade (two processes opening a new file together).
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(random.uniform(0.005, 0.05))


def _one_line(exc: BaseException) -> str:
    reason = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(reason).splitlines() if line.strip()]
    return " ".join(lines) or type(reason).__name__


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def _finite(values: Mapping[str, Any]) -> dict[str, Any]:
    """JSON has no NaN or infinity (PostgreSQL rejects them): store them as missing."""
    return {
        key: None if isinstance(value, float) and not math.isfinite(value) else value
        for key, value in values.items()
    }


def _chunks(ids: Sequence[str]) -> Iterator[list[str]]:
    ids = list(dict.fromkeys(ids))
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


def _run_record(row: Any) -> RunRecord:
    return RunRecord(
        id=row.id,
        pack_key=row.pack_key,
        config=row.config,
        dataset=row.dataset,
        family=row.family,
        model=row.model,
        lr=row.lr,
        weight_decay=row.weight_decay,
        seed=row.seed,
        params=row.params,
        flops=row.flops,
        parent_id=row.parent_id,
        variant=row.variant,
        state=row.state,
        owner=row.owner,
        heartbeat_at=_utc(row.heartbeat_at),
        started_at=_utc(row.started_at),
        finished_at=_utc(row.finished_at),
        message=row.message,
        metrics=row.metrics,
        engine=row.engine,
        environment=row.environment,
    )


_PENDING = {
    "state": "pending",
    "owner": None,
    "heartbeat_at": None,
    "started_at": None,
    "finished_at": None,
    "message": None,
    "metrics": {},
    "engine": None,
    "environment": {},
}
"""A run's columns when it goes back to pending: nothing of an earlier attempt is kept."""


def _forget_results(conn: Connection, run_ids: Sequence[str]) -> None:
    """Drop the curves and evaluations of runs returned to pending."""
    for chunk in _chunks(run_ids):
        conn.execute(delete(epoch_table).where(epoch_table.c.run_id.in_(chunk)))
        conn.execute(delete(evaluation_table).where(evaluation_table.c.run_id.in_(chunk)))


class SQLStore(Store):
    """The store on any SQLAlchemy database; open it with ``open_store``."""

    def __init__(
        self, engine: Engine, shown_url: str, *, read_only: bool = False, home: Path | None = None
    ) -> None:
        self._engine = engine
        self._shown_url = shown_url
        self._read_only = read_only
        self._home = home  # a SQLite file's folder (schema.stored_path)

    @property
    def id(self) -> str:
        with self._read() as conn:
            found = schema.store_id(conn)
        if found is None:  # an older store opened read-only, which writes no files
            raise StoreError(f"store {self._shown_url} has no id yet: `minarch run` gives it one")
        return found

    def _artifact(self, row: Any) -> ArtifactRecord:
        return ArtifactRecord(
            run_id=row.run_id,
            kind=row.kind,
            path=schema.located_path(row.path, self._home),
            sha256=row.sha256,
            size=row.size,
            created_at=_utc(row.created_at),
        )

    # -- transactions -------------------------------------------------------------

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[Connection]:
        """One transaction; database failures become a one-line ``StoreError``."""
        try:
            with self._engine.connect() as conn:
                conn.execution_options(minarch_begin=begin)
                with conn.begin():
                    yield conn
        except OperationalError as exc:
            raise StoreError(f"store {self._shown_url}: {_one_line(exc)}") from None

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """A write transaction; on SQLite it holds the write lock from its start.

        Ctrl-C and SIGTERM wait for it to end: raised inside a commit, they
        could leave SQLite's write lock held by a connection nobody uses, and
        the interrupted study's own release would then fail, "database is
        locked", instead of returning its runs to pending.
        """
        if self._read_only:
            raise StoreError(f"store {self._shown_url} is open read-only")
        with _interrupts_deferred(), self._transaction("IMMEDIATE") as conn:
            yield conn

    def _read(self) -> AbstractContextManager[Connection]:
        """A read transaction; on SQLite it takes no write lock."""
        return self._transaction("DEFERRED")

    def _check_study(self, conn: Connection, name: str | None) -> None:
        names = select(study_table.c.name)
        if name is None or conn.execute(names.where(study_table.c.name == name)).first():
            return
        known = ", ".join(conn.execute(names.order_by(study_table.c.name)).scalars())
        raise StoreError(f"unknown study {name!r}; known studies: {known or '(none)'}")

    def _check_run(self, conn: Connection, run_id: str) -> None:
        if conn.execute(select(run_table.c.id).where(run_table.c.id == run_id)).first() is None:
            raise StoreError(f"unknown run {run_id!r} in store {self._shown_url}")

    # -- studies ------------------------------------------------------------------

    def register_study(self, name: str, spec_text: str, runs: Sequence[NewRun]) -> int:
        by_id = {run.id: run for run in runs}
        for run in by_id.values():
            try:
                json.dumps(run.config)
            except (TypeError, ValueError) as exc:
                raise ValueError(
                    f"config of run {run.id} is not JSON-serialisable: {exc}"
                ) from None
        now = _now()
        with self._write() as conn:
            _serialise(conn)
            if conn.execute(select(study_table.c.name).where(study_table.c.name == name)).first():
                conn.execute(
                    update(study_table)
                    .where(study_table.c.name == name)
                    .values(spec_text=spec_text, updated_at=now)
                )
            else:
                conn.execute(
                    insert(study_table).values(
                        name=name, spec_text=spec_text, created_at=now, updated_at=now
                    )
                )
            existing: set[str] = set()
            linked: set[str] = set()
            for chunk in _chunks(list(by_id)):
                existing.update(
                    conn.execute(select(run_table.c.id).where(run_table.c.id.in_(chunk))).scalars()
                )
                linked.update(
                    conn.execute(
                        select(study_run_table.c.run_id).where(
                            study_run_table.c.study == name, study_run_table.c.run_id.in_(chunk)
                        )
                    ).scalars()
                )
            new = [run for run_id, run in by_id.items() if run_id not in existing]
            if new:
                seq = conn.execute(select(func.coalesce(func.max(run_table.c.seq), 0))).scalar_one()
                conn.execute(
                    insert(run_table),
                    [
                        {
                            "id": run.id,
                            "seq": seq + i + 1,
                            "pack_key": run.pack_key,
                            "config": run.config,
                            "dataset": run.dataset,
                            "family": run.family,
                            "model": run.model,
                            "lr": run.lr,
                            "weight_decay": run.weight_decay,
                            "seed": run.seed,
                            "params": run.params,
                            "flops": run.flops,
                            "parent_id": run.parent_id,
                            "variant": run.variant,
                            "state": "pending",
                            "metrics": {},
                            "environment": {},
                            "created_at": now,
                        }
                        for i, run in enumerate(new)
                    ],
                )
            links = [{"study": name, "run_id": run_id} for run_id in by_id if run_id not in linked]
            if links:
                conn.execute(insert(study_run_table), links)
        return len(new)

    def studies(self) -> list[str]:
        with self._read() as conn:
            return list(
                conn.execute(select(study_table.c.name).order_by(study_table.c.name)).scalars()
            )

    def study_spec(self, name: str) -> str:
        with self._read() as conn:
            self._check_study(conn, name)
            return conn.execute(
                select(study_table.c.spec_text).where(study_table.c.name == name)
            ).scalar_one()

    # -- runs -----------------------------------------------------------------------

    def runs(
        self, *, study: str | None = None, states: Collection[str] | None = None
    ) -> list[RunRecord]:
        query = select(run_table).order_by(run_table.c.seq, run_table.c.id)
        if study is not None:
            query = query.join(study_run_table, study_run_table.c.run_id == run_table.c.id).where(
                study_run_table.c.study == study
            )
        if states is not None:
            unknown = set(states) - set(RUN_STATES)
            if unknown:
                raise ValueError(f"unknown run states {sorted(unknown)}; expected {RUN_STATES}")
            query = query.where(run_table.c.state.in_(list(states)))
        with self._read() as conn:
            self._check_study(conn, study)
            return [_run_record(row) for row in conn.execute(query)]

    def claim(self, run_ids: Sequence[str], owner: str) -> list[str]:
        now = _now()
        claimed: set[str] = set()
        with self._write() as conn:
            for chunk in _chunks(run_ids):
                result = conn.execute(
                    update(run_table)
                    .where(run_table.c.id.in_(chunk), run_table.c.state == "pending")
                    .values(state="running", owner=owner, started_at=now, heartbeat_at=now)
                    .returning(run_table.c.id)
                )
                claimed.update(result.scalars())
        return [run_id for run_id in dict.fromkeys(run_ids) if run_id in claimed]

    def heartbeat(self, run_ids: Sequence[str], owner: str) -> None:
        now = _now()
        with self._write() as conn:
            for chunk in _chunks(run_ids):
                conn.execute(
                    update(run_table)
                    .where(
                        run_table.c.id.in_(chunk),
                        run_table.c.state == "running",
                        run_table.c.owner == owner,
                    )
                    .values(heartbeat_at=now)
                )

    def reclaim(self, *, study: str | None, stale_after: float) -> list[str]:
        cutoff = _now() - timedelta(seconds=stale_after)
        query = (
            select(
                run_table.c.id,
                run_table.c.state,
                run_table.c.owner,
                run_table.c.heartbeat_at,
            )
            .where(run_table.c.state.in_(["running", "failed"]))
            .order_by(run_table.c.seq, run_table.c.id)
        )
        if study is not None:
            query = query.join(study_run_table, study_run_table.c.run_id == run_table.c.id).where(
                study_run_table.c.study == study
            )
        reclaimed = []
        with self._write() as conn:
            self._check_study(conn, study)
            for row in conn.execute(query).all():
                heartbeat_at = _utc(row.heartbeat_at)
                abandoned = row.state == "running" and (
                    heartbeat_at is None or heartbeat_at <= cutoff or owner_is_gone(row.owner)
                )
                if row.state != "failed" and not abandoned:
                    continue
                # Match the row as read, so a heartbeat or finish in between wins.
                result = conn.execute(
                    update(run_table)
                    .where(
                        run_table.c.id == row.id,
                        run_table.c.state == row.state,
                        _same(run_table.c.owner, row.owner),
                        _same(run_table.c.heartbeat_at, row.heartbeat_at),
                    )
                    .values(**_PENDING)
                )
                if result.rowcount:
                    _forget_results(conn, [row.id])
                    reclaimed.append(row.id)
        return reclaimed

    def release(self, owner: str, run_ids: Sequence[str] | None = None) -> list[str]:
        query = select(run_table.c.id).where(
            run_table.c.state == "running", run_table.c.owner == owner
        )
        released = []
        with self._write() as conn:
            candidates = list(conn.execute(query).scalars())
            if run_ids is not None:
                wanted = set(run_ids)
                candidates = [i for i in candidates if i in wanted]
            for chunk in _chunks(candidates):
                result = conn.execute(
                    update(run_table)
                    .where(
                        run_table.c.id.in_(chunk),
                        run_table.c.state == "running",
                        run_table.c.owner == owner,
                    )
                    .values(**_PENDING)
                    .returning(run_table.c.id)
                )
                ids = list(result.scalars())
                _forget_results(conn, ids)
                released += ids
        return released

    def record_epoch(self, run_id: str, epoch: int, metrics: Mapping[str, float]) -> None:
        unknown = set(metrics) - set(EPOCH_METRICS)
        if unknown:
            raise ValueError(f"unknown epoch metrics {sorted(unknown)}; expected {EPOCH_METRICS}")
        values = {key: None if value is None else float(value) for key, value in metrics.items()}
        with self._write() as conn:
            self._check_run(conn, run_id)
            conn.execute(
                delete(epoch_table).where(
                    epoch_table.c.run_id == run_id, epoch_table.c.epoch == epoch
                )
            )
            conn.execute(insert(epoch_table).values(run_id=run_id, epoch=epoch, **values))

    def finish(
        self,
        run_id: str,
        state: str,
        *,
        metrics: Mapping[str, float] | None = None,
        message: str | None = None,
        engine: str | None = None,
        environment: Mapping[str, Any] | None = None,
        params: int | None = None,
        flops: int | None = None,
    ) -> None:
        if state not in FINISHED_STATES:
            raise ValueError(f"finish state must be one of {FINISHED_STATES}, not {state!r}")
        now = _now()
        sizes = {
            name: int(value)
            for name, value in (("params", params), ("flops", flops))
            if value is not None
        }
        with self._write() as conn:
            result = conn.execute(
                update(run_table)
                .where(run_table.c.id == run_id)
                .values(
                    state=state,
                    finished_at=now,
                    heartbeat_at=now,
                    metrics=_finite(metrics or {}),
                    message=message,
                    engine=engine,
                    environment=dict(environment or {}),
                    **sizes,
                )
            )
            if not result.rowcount:
                raise StoreError(f"unknown run {run_id!r} in store {self._shown_url}")

    # -- artifacts ----------------------------------------------------------------

    def add_artifact(self, run_id: str, kind: str, path: str, sha256: str, size: int) -> None:
        path = schema.stored_path(path, self._home)
        with self._write() as conn:
            self._check_run(conn, run_id)
            conn.execute(
                delete(artifact_table).where(
                    artifact_table.c.run_id == run_id,
                    artifact_table.c.kind == kind,
                    artifact_table.c.path == path,
                )
            )
            conn.execute(
                insert(artifact_table).values(
                    run_id=run_id, kind=kind, path=path, sha256=sha256, size=size, created_at=_now()
                )
            )

    def artifacts(self, run_id: str | None = None) -> list[ArtifactRecord]:
        query = select(artifact_table).order_by(artifact_table.c.id)
        if run_id is not None:
            query = query.where(artifact_table.c.run_id == run_id)
        with self._read() as conn:
            return [self._artifact(row) for row in conn.execute(query)]

    # -- evaluations ----------------------------------------------------------------

    def record_evaluation(
        self, run_id: str, key: str, setting: Mapping[str, Any], metrics: Mapping[str, Any]
    ) -> None:
        for name, value in (("setting", setting), ("metrics", metrics)):
            try:
                json.dumps(value)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"evaluation {name} is not JSON-serialisable: {exc}") from None
        with self._write() as conn:
            self._check_run(conn, run_id)
            conn.execute(
                delete(evaluation_table).where(
                    evaluation_table.c.run_id == run_id, evaluation_table.c.key == key
                )
            )
            conn.execute(
                insert(evaluation_table).values(
                    run_id=run_id,
                    key=key,
                    setting=dict(setting),
                    metrics=_finite(metrics),
                    created_at=_now(),
                )
            )

    def evaluations(self, *, study: str | None = None) -> list[EvaluationRecord]:
        query = (
            select(evaluation_table)
            .join(run_table, run_table.c.id == evaluation_table.c.run_id)
            .order_by(run_table.c.seq, evaluation_table.c.run_id, evaluation_table.c.created_at)
        )
        if study is not None:
            members = select(study_run_table.c.run_id).where(study_run_table.c.study == study)
            query = query.where(evaluation_table.c.run_id.in_(members))
        with self._read() as conn:
            self._check_study(conn, study)
            return [
                EvaluationRecord(
                    run_id=row.run_id,
                    key=row.key,
                    setting=row.setting,
                    metrics=row.metrics,
                    created_at=_utc(row.created_at),
                )
                for row in conn.execute(query)
            ]

    # -- deleting -----------------------------------------------------------------

    def delete_runs(self, study: str, run_ids: Sequence[str]) -> list[ArtifactRecord]:
        ids = list(dict.fromkeys(run_ids))
        links, runs = study_run_table.c, run_table.c
        with self._write() as conn:
            self._check_study(conn, study)
            in_study = select(links.run_id).where(links.study == study)
            linked = _found(conn, ids, lambda chunk: in_study.where(links.run_id.in_(chunk)))
            missing = ", ".join(run_id for run_id in ids if run_id not in linked)
            if missing:
                raise StoreError(f"study {study!r} has no run {missing}")
            children = _found(
                conn, ids, lambda chunk: select(runs.id).where(runs.parent_id.in_(chunk))
            )
            orphans = ", ".join(sorted(children - set(ids)))
            if orphans:
                raise StoreError(f"runs {orphans} derive from the runs to delete: delete them too")
            in_others = select(links.run_id).where(links.study != study)
            shared = _found(conn, ids, lambda chunk: in_others.where(links.run_id.in_(chunk)))
            for chunk in _chunks(ids):
                conn.execute(
                    delete(study_run_table).where(links.study == study, links.run_id.in_(chunk))
                )
            artifacts = []
            for chunk in _chunks([run_id for run_id in ids if run_id not in shared]):
                query = select(artifact_table).where(artifact_table.c.run_id.in_(chunk))
                artifacts += [
                    self._artifact(row) for row in conn.execute(query.order_by(artifact_table.c.id))
                ]
                for table in (epoch_table, evaluation_table, artifact_table):
                    conn.execute(delete(table).where(table.c.run_id.in_(chunk)))
                conn.execute(delete(run_table).where(runs.id.in_(chunk)))
            if conn.execute(in_study.limit(1)).first() is None:
                conn.execute(delete(study_table).where(study_table.c.name == study))
        return artifacts

    # -- tables -------------------------------------------------------------------

    def status(self) -> pd.DataFrame:
        counts = (
            select(study_run_table.c.study, run_table.c.state, func.count())
            .join(run_table, run_table.c.id == study_run_table.c.run_id)
            .group_by(study_run_table.c.study, run_table.c.state)
        )
        with self._read() as conn:
            names = list(conn.execute(select(study_table.c.name)).scalars())
            return frames.status_frame(conn.execute(counts).all(), names)

    def runs_frame(self, *, study: str | None = None) -> pd.DataFrame:
        query = (
            select(
                run_table.c.id.label("run_id"),
                study_run_table.c.study,
                run_table.c.dataset,
                run_table.c.family,
                run_table.c.model,
                run_table.c.params,
                run_table.c.flops,
                run_table.c.lr,
                run_table.c.weight_decay,
                run_table.c.seed,
                run_table.c.parent_id,
                run_table.c.variant,
                run_table.c.state,
                run_table.c.engine,
                run_table.c.config,
                run_table.c.metrics,
                run_table.c.environment,
                run_table.c.started_at,
                run_table.c.finished_at,
                run_table.c.message,
            )
            .join(study_run_table, study_run_table.c.run_id == run_table.c.id)
            .order_by(study_run_table.c.study, run_table.c.seq, run_table.c.id)
        )
        if study is not None:
            query = query.where(study_run_table.c.study == study)
        with self._read() as conn:
            self._check_study(conn, study)
            return frames.runs_frame(row._mapping for row in conn.execute(query))

    def epochs_frame(self, *, study: str | None = None) -> pd.DataFrame:
        query = (
            select(
                epoch_table.c.run_id,
                epoch_table.c.epoch,
                *(epoch_table.c[name] for name in EPOCH_METRICS),
            )
            .join(run_table, run_table.c.id == epoch_table.c.run_id)
            .order_by(run_table.c.seq, epoch_table.c.run_id, epoch_table.c.epoch)
        )
        if study is not None:
            members = select(study_run_table.c.run_id).where(study_run_table.c.study == study)
            query = query.where(epoch_table.c.run_id.in_(members))
        with self._read() as conn:
            self._check_study(conn, study)
            return frames.epochs_frame(row._mapping for row in conn.execute(query))

    def close(self) -> None:
        self._engine.dispose()


def _found(conn: Connection, ids: Sequence[str], query: Callable[[list[str]], Any]) -> set[str]:
    """The ids ``query(chunk)`` selects, over ``ids`` in chunks (one IN clause each)."""
    found: set[str] = set()
    for chunk in _chunks(ids):
        found.update(conn.execute(query(chunk)).scalars())
    return found


def _same(column: Any, value: Any) -> Any:
    """``column = value`` that also matches NULL."""
    return column.is_(None) if value is None else column == value
