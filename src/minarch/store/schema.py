"""Tables, the schema version and the migrations between versions.

A change to the tables bumps ``SCHEMA_VERSION`` and adds a migration from the
previous version to ``MIGRATIONS``, with a test on a database written by the
previous version.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from pathlib import Path

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Connection,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    inspect,
    select,
    update,
)

from minarch.errors import StoreError

SCHEMA_VERSION = 3

metadata = MetaData()

meta_table = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

study_table = Table(
    "studies",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("spec_text", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

run_table = Table(
    "runs",
    metadata,
    Column("id", String(64), primary_key=True),
    # Registration order, so parents (registered first) are listed before children.
    Column("seq", BigInteger, nullable=False),
    Column("pack_key", String(255), nullable=False, index=True),
    Column("config", JSON, nullable=False),
    Column("dataset", String(255), nullable=False),
    Column("family", String(255), nullable=False),
    Column("model", String(255), nullable=False),
    Column("lr", Float, nullable=False),
    Column("weight_decay", Float, nullable=False),
    Column("seed", BigInteger, nullable=False),
    Column("params", BigInteger, nullable=False),
    Column("flops", BigInteger, nullable=False),
    # A derived run's parent (pruned or quantized from it) and what was done to it.
    Column("parent_id", String(64), index=True),
    Column("variant", String(255), nullable=False, server_default="base"),
    Column("state", String(16), nullable=False, index=True),
    Column("owner", String(255)),
    Column("heartbeat_at", DateTime(timezone=True)),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("message", Text),
    Column("metrics", JSON, nullable=False),
    Column("engine", String(255)),
    Column("environment", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

study_run_table = Table(
    "study_runs",
    metadata,
    Column("study", String(255), ForeignKey("studies.name", ondelete="CASCADE"), primary_key=True),
    Column("run_id", String(64), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
)

epoch_table = Table(
    "epochs",
    metadata,
    Column("run_id", String(64), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("epoch", Integer, primary_key=True, autoincrement=False),
    Column("train_loss", Float),
    Column("train_acc", Float),
    Column("train_eval_loss", Float),
    Column("train_eval_acc", Float),
    Column("val_loss", Float),
    Column("val_acc", Float),
    Column("val_top5", Float),
    Column("lr", Float),
    Column("wall_time", Float),
)

artifact_table = Table(
    "artifacts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("path", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("run_id", "kind", "path"),
)

evaluation_table = Table(
    "evaluations",
    metadata,
    Column("run_id", String(64), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    # Digest of the setting, so one setting is evaluated once per run.
    Column("key", String(64), primary_key=True),
    Column("setting", JSON, nullable=False),
    Column("metrics", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

Migration = Callable[[Connection], None]


def _add_compression(conn: Connection) -> None:
    """Version 1 -> 2: derived runs (parent, variant) and evaluations of trained runs."""
    conn.exec_driver_sql("ALTER TABLE runs ADD COLUMN parent_id VARCHAR(64)")
    conn.exec_driver_sql("ALTER TABLE runs ADD COLUMN variant VARCHAR(255) NOT NULL DEFAULT 'base'")
    conn.exec_driver_sql("CREATE INDEX ix_runs_parent_id ON runs (parent_id)")
    evaluation_table.create(conn)


def _add_train_eval(conn: Connection) -> None:
    """Version 2 -> 3: eval-mode metrics on a fixed training subset (NULL for older runs)."""
    conn.exec_driver_sql("ALTER TABLE epochs ADD COLUMN train_eval_loss FLOAT")
    conn.exec_driver_sql("ALTER TABLE epochs ADD COLUMN train_eval_acc FLOAT")


# {from_version: migration to from_version + 1}; each runs in the open transaction.
MIGRATIONS: dict[int, Migration] = {1: _add_compression, 2: _add_train_eval}


def ensure_schema(conn: Connection, home: Path | None = None) -> None:
    """Create the tables of an empty database, then bring an older one up to date.

    ``home`` is the folder of a file-backed store (see ``stored_path``).
    Raises ``StoreError`` for a database written by a newer minarch or by
    another program.
    """
    found = schema_version(conn)
    if found is None:
        metadata.create_all(conn)
        conn.execute(meta_table.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))
    else:
        migrate(conn, found)
    if store_id(conn) is None:  # written before stores had ids: adopt what it recorded then
        _adopt_artifact_paths(conn, home)
        _name_legacy_resnet_shortcuts(conn)
        conn.execute(meta_table.insert().values(key="store_id", value=uuid.uuid4().hex))


def store_id(conn: Connection) -> str | None:
    """The store's own name (``Store.id``); None for a store written before it had one."""
    return conn.execute(select(meta_table.c.value).where(meta_table.c.key == "store_id")).scalar()


def stored_path(path: str | Path, home: Path | None) -> str:
    """How a file's path is recorded: relative to ``home`` when under it, else absolute."""
    absolute = Path(path).expanduser().resolve()
    if home is not None and absolute.is_relative_to(home):
        return str(absolute.relative_to(home))
    return str(absolute)


def located_path(recorded: str, home: Path | None) -> str:
    """The absolute path of a recorded one (``stored_path`` read back)."""
    if home is None or Path(recorded).is_absolute():
        return recorded
    return str(home / recorded)


def _name_legacy_resnet_shortcuts(conn: Connection) -> None:
    """ResNet-CIFAR runs stored before option A was the default were option B.

    Their configs do not name the shortcut, so they read as option A and share
    the label of the option-A runs trained since: a study mixing both would
    compare them as one architecture. Their ids already hash as option B.
    """
    rows = conn.execute(
        select(run_table.c.id, run_table.c.config, run_table.c.model).where(
            run_table.c.family == "resnet_cifar"
        )
    ).all()
    for row in rows:
        model = dict(row.config.get("model") or {})
        if "shortcut" in model:
            continue
        config = {**row.config, "model": {**model, "shortcut": "B"}}
        conn.execute(
            update(run_table)
            .where(run_table.c.id == row.id)
            .values(config=config, model=f"{row.model} shortcut-B")
        )


def _adopt_artifact_paths(conn: Connection, home: Path | None) -> None:
    """A store without an id recorded relative paths from the working directory of the time.

    That folder is gone from the record; the store's own folder (where a
    relative SQLite URL was run from) is tried first, then this working
    directory, and the first that holds the file wins.
    """
    rows = conn.execute(select(artifact_table.c.id, artifact_table.c.path)).all()
    for row in rows:
        if Path(row.path).is_absolute():
            continue
        candidates = [Path.cwd() / row.path] if home is None else [home / row.path]
        candidates.append(Path.cwd() / row.path)
        found = next((c for c in candidates if c.exists()), candidates[0])
        conn.execute(
            update(artifact_table)
            .where(artifact_table.c.id == row.id)
            .values(path=stored_path(found, home))
        )


def check_schema(conn: Connection) -> bool:
    """What a read-only open needs: False for an empty database, True for a current one.

    Raises ``StoreError`` where ``ensure_schema`` would have to write (an
    older version) or would refuse.
    """
    found = schema_version(conn)
    if found is None:
        return False
    _refuse_newer(found, SCHEMA_VERSION)
    if found < SCHEMA_VERSION:
        raise StoreError(
            f"the database has schema version {found}, older than this minarch's "
            f"({SCHEMA_VERSION}): any command that writes (minarch run) upgrades it"
        )
    return True


def schema_version(conn: Connection) -> int | None:
    """The database's minarch schema version; None when it has no tables at all.

    A database with other tables and no ``meta`` belongs to another program:
    minarch adds nothing to it.
    """
    if not inspect(conn).has_table("meta"):
        if inspect(conn).get_table_names():
            raise StoreError(
                "the database has tables but no minarch schema: give minarch a database of its own"
            )
        return None
    found = conn.execute(
        select(meta_table.c.value).where(meta_table.c.key == "schema_version")
    ).scalar()
    if found is None:
        raise StoreError("the database has no schema version: it was not written by minarch")
    try:
        return int(found)
    except ValueError:
        raise StoreError(
            f"the database's schema version {found[:20]!r} is not a number: "
            "it was not written by minarch"
        ) from None


def migrate(
    conn: Connection,
    found: int,
    *,
    target: int = SCHEMA_VERSION,
    migrations: Mapping[int, Migration] = MIGRATIONS,
) -> None:
    """Apply the migrations from schema version ``found`` up to ``target``."""
    _refuse_newer(found, target)
    for version in range(found, target):
        if version not in migrations:
            raise StoreError(f"no migration from schema version {version}: the database is too old")
        migrations[version](conn)
        conn.execute(
            update(meta_table)
            .where(meta_table.c.key == "schema_version")
            .values(value=str(version + 1))
        )


def _refuse_newer(found: int, target: int) -> None:
    if found > target:
        raise StoreError(
            f"the database has schema version {found} but this minarch knows only up to "
            f"{target}: upgrade minarch"
        )
