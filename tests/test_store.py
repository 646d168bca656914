"""One contract suite for every store backend (SQLite file, PostgreSQL server)."""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
import random
import socket
import sqlite3
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import DBAPIError

from minarch.errors import StoreError
from minarch.store import (
    RUN_STATES,
    SCHEMA_VERSION,
    NewRun,
    Store,
    default_db_url,
    local_owner,
    open_store,
)
from minarch.store.schema import MIGRATIONS, meta_table, migrate
from minarch.store.sql import mask_url
from tests.cli import error_lines, minarch


def make_run(i: int, *, pack: str = "pack-a", epochs: int = 3) -> NewRun:
    return NewRun(
        id=f"{i:016x}",
        pack_key=pack,
        config={"dataset": {"name": "digits"}, "training": {"epochs": epochs, "lr": 0.1 * i}},
        dataset="digits",
        family="mlp",
        model="mlp d2 w16",
        lr=0.1 * (i + 1),
        weight_decay=1e-4,
        seed=i,
        params=1000 + i,
        flops=2000 + i,
    )


RUNS = [make_run(i) for i in range(4)]
IDS = [run.id for run in RUNS]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'runs.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    with open_store(url) as opened:
        yield opened


@pytest.fixture
def registered(store: Store) -> Store:
    store.register_study("alpha", "name: alpha\n", RUNS)
    return store


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


SCHEMA_VERSION_QUERY = text("SELECT value FROM meta WHERE key = 'schema_version'")


def set_schema_version(url: str, version: int | str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            meta_table.update()
            .where(meta_table.c.key == "schema_version")
            .values(value=str(version))
        )
    engine.dispose()


# --- studies and registration ---------------------------------------------------------


def test_register_is_idempotent(store: Store) -> None:
    assert store.register_study("alpha", "v1", RUNS) == 4
    assert store.register_study("alpha", "v2", RUNS) == 0
    assert store.register_study("alpha", "v3", [*RUNS, make_run(9)]) == 1
    assert [run.id for run in store.runs()] == [*IDS, make_run(9).id]
    assert {run.state for run in store.runs()} == {"pending"}
    assert store.study_spec("alpha") == "v3"


def test_run_linked_to_two_studies(registered: Store) -> None:
    assert registered.register_study("beta", "name: beta\n", RUNS[:2]) == 0
    assert registered.studies() == ["alpha", "beta"]
    assert [run.id for run in registered.runs(study="beta")] == IDS[:2]
    assert len(registered.runs()) == 4
    frame = registered.runs_frame()
    assert sorted(frame.groupby("study").size().items()) == [("alpha", 4), ("beta", 2)]
    assert len(registered.runs_frame(study="beta")) == 2


def test_unknown_study_lists_known_ones(registered: Store) -> None:
    with pytest.raises(StoreError, match="unknown study 'gamma'.*alpha"):
        registered.study_spec("gamma")
    with pytest.raises(StoreError, match="unknown study"):
        registered.runs(study="gamma")


def test_runs_filter_by_state(registered: Store) -> None:
    registered.claim(IDS[:1], "host:1")
    assert [run.id for run in registered.runs(states=["running"])] == IDS[:1]
    assert len(registered.runs(study="alpha", states=("pending", "done"))) == 3
    with pytest.raises(ValueError, match="unknown run states"):
        registered.runs(states=["finished"])


def test_failed_write_leaves_store_unchanged(store: Store) -> None:
    too_big = dataclasses.replace(make_run(7), seed=2**64)  # fails inside the transaction
    with pytest.raises((OverflowError, DBAPIError)):
        store.register_study("alpha", "spec", [RUNS[0], too_big])
    assert store.studies() == []
    assert store.runs() == []
    not_json = dataclasses.replace(make_run(7), config={"device": object()})
    with pytest.raises(ValueError, match="not JSON-serialisable"):
        store.register_study("alpha", "spec", [not_json])


# --- claiming, heartbeats, reclaiming --------------------------------------------------


def test_claim_is_exclusive(registered: Store) -> None:
    assert registered.claim(IDS[:3], "host:1") == IDS[:3]
    assert registered.claim(IDS, "host:2") == IDS[3:]
    assert registered.claim(IDS, "host:3") == []
    run = registered.runs()[0]
    assert (run.state, run.owner) == ("running", "host:1")
    assert run.started_at is not None and run.started_at.utcoffset().total_seconds() == 0
    assert run.heartbeat_at == run.started_at


def test_heartbeat_only_for_owner(registered: Store) -> None:
    registered.claim(IDS[:2], "host:1")
    before = {run.id: run.heartbeat_at for run in registered.runs()}
    registered.heartbeat(IDS, "host:1")
    registered.heartbeat(IDS, "host:other")
    after = {run.id: run.heartbeat_at for run in registered.runs()}
    assert all(after[i] > before[i] for i in IDS[:2])
    assert after[IDS[2]] is None


def test_reclaim_stale_deletes_epochs(registered: Store) -> None:
    registered.claim(IDS[:2], "elsewhere:1")
    registered.record_epoch(IDS[0], 0, {"train_loss": 1.0, "val_acc": 0.5})
    assert registered.reclaim(study="alpha", stale_after=3600) == []
    assert registered.reclaim(study="alpha", stale_after=0) == IDS[:2]
    run = registered.runs()[0]
    assert (run.state, run.owner, run.heartbeat_at, run.started_at) == ("pending", None, None, None)
    assert registered.epochs_frame().empty
    assert registered.claim(IDS[:1], "host:2") == IDS[:1]


def test_reclaim_dead_local_owner(registered: Store) -> None:
    host = socket.gethostname()
    registered.claim(IDS[:1], f"{host}:{dead_pid()}")
    registered.claim(IDS[1:2], local_owner())  # alive: this process
    registered.claim(IDS[2:3], f"not-{host}:{dead_pid()}")  # another machine: trust heartbeat
    assert registered.reclaim(study=None, stale_after=3600) == IDS[:1]
    assert [run.state for run in registered.runs()] == ["pending", "running", "running", "pending"]


def test_reclaim_retries_failed_within_study(registered: Store) -> None:
    registered.register_study("beta", "spec", [make_run(8)])
    registered.claim([*IDS[:2], make_run(8).id], "host:1")
    registered.finish(IDS[0], "failed", message="out of memory")
    registered.finish(IDS[1], "diverged")
    registered.finish(make_run(8).id, "failed")
    assert registered.reclaim(study="alpha", stale_after=3600) == IDS[:1]
    run = registered.runs()[0]
    assert (run.state, run.message, run.finished_at, run.metrics) == ("pending", None, None, {})
    assert registered.runs()[1].state == "diverged"
    assert registered.reclaim(study=None, stale_after=3600) == [make_run(8).id]


# --- results ---------------------------------------------------------------------------


def test_finish_states(registered: Store) -> None:
    registered.claim(IDS, "host:1")
    registered.finish(
        IDS[0],
        "done",
        metrics={"final_val_acc": 0.9, "best_epoch": 2},
        engine="fleet",
        environment={"torch": "2.5", "device": "cpu"},
    )
    registered.finish(IDS[1], "failed", message="CUDA out of memory")
    registered.finish(IDS[2], "diverged", metrics={"final_train_loss": math.nan})
    done, failed, diverged, running = registered.runs()
    assert (done.state, done.metrics, done.engine) == (
        "done",
        {"final_val_acc": 0.9, "best_epoch": 2},
        "fleet",
    )
    assert done.environment == {"torch": "2.5", "device": "cpu"}
    assert done.finished_at >= done.started_at
    assert (failed.state, failed.message) == ("failed", "CUDA out of memory")
    assert (diverged.state, diverged.metrics) == ("diverged", {"final_train_loss": None})
    assert running.state == "running"
    with pytest.raises(ValueError, match="finish state"):
        registered.finish(IDS[3], "pending")
    with pytest.raises(StoreError, match="unknown run"):
        registered.finish("ffffffffffffffff", "done")


def test_status_counts(registered: Store) -> None:
    registered.register_study("beta", "spec", RUNS[:1])
    registered.register_study("empty", "spec", [])
    registered.claim(IDS[:3], "host:1")
    registered.finish(IDS[0], "done")
    registered.finish(IDS[1], "failed")
    frame = registered.status()
    assert list(frame.columns) == ["study", *RUN_STATES, "total"]
    rows = {row.study: row for row in frame.itertuples()}
    alpha, beta, empty = rows["alpha"], rows["beta"], rows["empty"]
    assert (alpha.pending, alpha.running, alpha.done, alpha.failed, alpha.diverged) == (
        1,
        1,
        1,
        1,
        0,
    )
    assert (alpha.total, beta.done, beta.total, empty.total) == (4, 1, 1, 0)


def test_runs_frame_columns(registered: Store) -> None:
    registered.claim(IDS[:1], "host:1")
    registered.finish(IDS[0], "done", metrics={"final_val_acc": 0.75, "extra_metric": 1.0})
    frame = registered.runs_frame(study="alpha")
    assert list(frame.columns[:14]) == [
        "run_id",
        "study",
        "dataset",
        "family",
        "model",
        "params",
        "flops",
        "lr",
        "weight_decay",
        "seed",
        "parent_id",
        "variant",
        "state",
        "engine",
    ]
    assert list(frame.columns[14:17]) == [
        "config.dataset.name",
        "config.training.epochs",
        "config.training.lr",
    ]
    assert {"final_val_acc", "best_val_acc", "train_seconds", "extra_metric"} <= set(frame.columns)
    assert list(frame.columns[-3:]) == ["started_at", "finished_at", "message"]
    assert list(frame["run_id"]) == IDS
    assert frame["config.training.epochs"].tolist() == [3, 3, 3, 3]
    assert frame["final_val_acc"].iloc[0] == 0.75 and math.isnan(frame["final_val_acc"].iloc[1])
    assert str(frame["started_at"].dt.tz) == "UTC"


def test_epochs_frame(registered: Store) -> None:
    registered.register_study("beta", "spec", [make_run(8)])
    for epoch in range(3):
        registered.record_epoch(IDS[0], epoch, {"train_loss": 1.0 / (epoch + 1), "lr": 0.1})
    registered.record_epoch(IDS[0], 2, {"train_loss": 0.25, "val_acc": 0.8})  # replaces
    registered.record_epoch(make_run(8).id, 0, {"train_loss": 2.0})
    frame = registered.epochs_frame(study="alpha")
    assert list(frame.columns) == [
        "run_id",
        "epoch",
        "train_loss",
        "train_acc",
        "train_eval_loss",
        "train_eval_acc",
        "val_loss",
        "val_acc",
        "val_top5",
        "lr",
        "wall_time",
    ]
    assert frame["epoch"].tolist() == [0, 1, 2]
    assert frame["train_loss"].tolist() == [1.0, 0.5, 0.25]
    assert frame["val_acc"].iloc[2] == 0.8 and math.isnan(frame["lr"].iloc[2])
    assert len(registered.epochs_frame()) == 4
    with pytest.raises(ValueError, match="unknown epoch metrics"):
        registered.record_epoch(IDS[0], 3, {"accuracy": 1.0})
    with pytest.raises(StoreError, match="unknown run"):
        registered.record_epoch("ffffffffffffffff", 0, {"train_loss": 1.0})


def test_artifacts(registered: Store) -> None:
    registered.add_artifact(IDS[0], "weights", "runs/a/weights.pt", "ab" * 32, 1234)
    registered.add_artifact(IDS[0], "onnx", "runs/a/model.onnx", "cd" * 32, 99)
    registered.add_artifact(IDS[0], "weights", "runs/a/weights.pt", "ef" * 32, 1235)  # replaces
    found = registered.artifacts(IDS[0])
    assert [(a.kind, a.sha256, a.size) for a in found] == [
        ("onnx", "cd" * 32, 99),
        ("weights", "ef" * 32, 1235),
    ]
    assert found[0].created_at.utcoffset().total_seconds() == 0
    assert registered.artifacts(IDS[1]) == []
    with pytest.raises(StoreError, match="unknown run"):
        registered.add_artifact("ffffffffffffffff", "weights", "x", "0" * 64, 1)


def test_derived_runs_keep_parent_variant_and_final_sizes(store: Store) -> None:
    child = dataclasses.replace(make_run(7), parent_id=IDS[0], variant="retrain structured 0.5")
    store.register_study("alpha", "spec", [*RUNS, child])
    assert store.runs()[-1].parent_id == IDS[0]
    store.claim([child.id], "host:1")
    store.finish(child.id, "done", metrics={"final_val_acc": 0.5}, params=10, flops=20)
    record = store.runs()[-1]
    assert (record.variant, record.params, record.flops) == ("retrain structured 0.5", 10, 20)
    frame = store.runs_frame()
    assert frame["variant"].tolist() == ["base"] * 4 + ["retrain structured 0.5"]
    assert frame["parent_id"].iloc[-1] == IDS[0] and frame["parent_id"].iloc[:4].isna().all()


def test_evaluations_are_replaced_per_key_and_dropped_on_reclaim(registered: Store) -> None:
    registered.register_study("beta", "spec", RUNS[2:])
    setting = {"kind": "prune", "method": "unstructured-global", "sparsity": 0.5}
    registered.record_evaluation(IDS[0], "a", setting, {"val_acc": 0.1})
    registered.record_evaluation(IDS[0], "a", setting, {"val_acc": 0.2, "loss": math.nan})
    registered.record_evaluation(IDS[3], "a", setting, {"val_acc": 0.3})
    found = registered.evaluations(study="alpha")
    assert [(e.run_id, e.metrics["val_acc"]) for e in found] == [(IDS[0], 0.2), (IDS[3], 0.3)]
    assert found[0].setting == setting and found[0].metrics["loss"] is None
    assert [e.run_id for e in registered.evaluations(study="beta")] == [IDS[3]]
    with pytest.raises(StoreError, match="unknown run"):
        registered.record_evaluation("nope", "a", setting, {})
    with pytest.raises(ValueError, match="JSON"):
        registered.record_evaluation(IDS[0], "b", {"x": object()}, {})
    registered.claim(IDS[:1], "host:1")
    registered.finish(IDS[0], "failed", message="boom")
    registered.reclaim(study="alpha", stale_after=60)
    assert [e.run_id for e in registered.evaluations()] == [IDS[3]]


def test_records_are_frozen(registered: Store) -> None:
    registered.add_artifact(IDS[0], "weights", "w.pt", "0" * 64, 1)
    run = registered.runs()[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.state = "done"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        registered.artifacts(IDS[0])[0].size = 2  # type: ignore[misc]
    run.config["training"]["epochs"] = 99
    assert registered.runs()[0].config["training"]["epochs"] == 3


# --- opening, schema versions ----------------------------------------------------------


def test_reopen_database(url: str) -> None:
    with open_store(url) as first:
        first.register_study("alpha", "spec", RUNS)
        first.claim(IDS[:1], "host:1")
        first.finish(IDS[0], "done", metrics={"final_val_acc": 0.5})
    with open_store(url) as again:
        assert again.studies() == ["alpha"]
        assert again.runs()[0].metrics == {"final_val_acc": 0.5}


def downgrade_to_version_2(url: str) -> None:
    """Turn a fresh database into what schema version 2 wrote: no eval-mode training metrics."""
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE epochs DROP COLUMN train_eval_loss"))
        conn.execute(text("ALTER TABLE epochs DROP COLUMN train_eval_acc"))
        conn.execute(meta_table.update().values(value="2"))
    engine.dispose()


def downgrade_to_version_1(url: str) -> None:
    """Turn a fresh database into what minarch 0.1 (schema version 1) wrote."""
    downgrade_to_version_2(url)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE evaluations"))
        conn.execute(text("DROP INDEX ix_runs_parent_id"))
        conn.execute(text("ALTER TABLE runs DROP COLUMN parent_id"))
        conn.execute(text("ALTER TABLE runs DROP COLUMN variant"))
        conn.execute(meta_table.delete().where(meta_table.c.key == "store_id"))
        conn.execute(meta_table.update().values(value="1"))
    engine.dispose()


def test_version_1_database_is_migrated(url: str) -> None:
    open_store(url).close()
    downgrade_to_version_1(url)
    engine = create_engine(url)
    with engine.begin() as conn:  # a run as version 1 stored it
        conn.execute(
            text(
                "INSERT INTO runs (id, seq, pack_key, config, dataset, family, model, lr, "
                "weight_decay, seed, params, flops, state, metrics, environment, created_at) "
                "VALUES ('old', 1, 'p', '{}', 'digits', 'mlp', 'm', 0.1, 0.0, 0, 1, 2, "
                "'done', '{}', '{}', '2026-01-01 00:00:00')"
            )
        )
    engine.dispose()
    with open_store(url) as store:
        (old,) = store.runs()
        assert (old.parent_id, old.variant, old.state) == (None, "base", "done")
        store.register_study("alpha", "spec", [dataclasses.replace(RUNS[0], parent_id="old")])
        store.record_evaluation("old", "k", {"kind": "quant"}, {"val_acc": 0.5})
        assert store.runs(study="alpha")[0].parent_id == "old"
    engine = create_engine(url)
    with engine.begin() as conn:
        assert conn.execute(SCHEMA_VERSION_QUERY).scalar() == str(SCHEMA_VERSION)
    engine.dispose()


def test_version_2_epochs_gain_eval_mode_training_metrics(url: str) -> None:
    with open_store(url) as store:
        store.register_study("alpha", "spec", RUNS[:1])
        store.record_epoch(IDS[0], 1, {"train_acc": 0.5, "val_acc": 0.6})
    downgrade_to_version_2(url)
    with open_store(url) as store:
        store.record_epoch(IDS[0], 2, {"train_eval_acc": 0.7, "val_acc": 0.65})
        frame = store.epochs_frame()
    assert frame["train_eval_acc"].isna().tolist() == [True, False]
    assert frame["train_eval_acc"].iloc[1] == 0.7
    assert frame["train_acc"].iloc[0] == 0.5


def test_newer_schema_version_is_refused(url: str) -> None:
    open_store(url).close()
    set_schema_version(url, SCHEMA_VERSION + 1)
    with pytest.raises(StoreError, match="upgrade minarch"):
        open_store(url)


def test_migrations_run_in_order(url: str) -> None:
    """The hook the next schema change plugs into: ``{from_version: migration}``."""
    assert all(version < SCHEMA_VERSION for version in MIGRATIONS)
    open_store(url).close()
    applied = []
    steps = {1: lambda conn: applied.append(1), 2: lambda conn: applied.append(2)}
    engine = create_engine(url)
    with engine.begin() as conn:
        migrate(conn, 1, target=3, migrations=steps)
        assert conn.execute(SCHEMA_VERSION_QUERY).scalar() == "3"
    with engine.begin() as conn, pytest.raises(StoreError, match="no migration from schema"):
        migrate(conn, 0, target=3, migrations=steps)
    engine.dispose()
    assert applied == [1, 2]


def test_sqlite_in_missing_directory_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "runs.db"
    with pytest.raises(StoreError, match="does not exist") as info:
        open_store(f"sqlite:///{missing}")
    assert str(missing.parent) in str(info.value) and "\n" not in str(info.value)
    assert not missing.parent.exists()


def test_unreachable_postgres_masks_password() -> None:
    pytest.importorskip("psycopg")
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(StoreError, match=f"cannot open store .*127.0.0.1:{port}") as info:
        open_store(f"postgresql+psycopg://minarch:s3cret@127.0.0.1:{port}/runs")
    assert "s3cret" not in str(info.value) and "***" in str(info.value)
    assert "\n" not in str(info.value)


def test_bad_urls() -> None:
    with pytest.raises(StoreError, match="not a database URL"):
        open_store("not a url")
    with pytest.raises(StoreError, match="cannot open store"):
        open_store("nosuchdialect://host/db")


def test_default_db_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MINARCH_DB", "postgresql+psycopg://host/db")
    assert default_db_url() == "postgresql+psycopg://host/db"
    monkeypatch.delenv("MINARCH_DB")
    monkeypatch.chdir(tmp_path)
    assert default_db_url() == f"sqlite:///{tmp_path.resolve() / 'minarch.db'}"


# --- several processes on one SQLite file ------------------------------------------------


def _claim_worker(url: str, ids: list[str], owner: str, start, results) -> None:
    rng = random.Random(owner)
    order = ids[:]
    rng.shuffle(order)
    claimed = []
    with open_store(url) as store:
        start.wait()
        for i in range(0, len(order), 3):
            claimed += store.claim(order[i : i + 3], owner)
            store.heartbeat(claimed[-3:], owner)
    results.put((owner, claimed))


def test_two_processes_claim_each_run_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    runs = [make_run(i) for i in range(300)]
    with open_store(url) as store:
        store.register_study("alpha", "spec", runs)
    ids = [run.id for run in runs]
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(2), context.Queue()
    workers = [
        context.Process(target=_claim_worker, args=(url, ids, f"host:{n}", start, results))
        for n in range(2)
    ]
    for worker in workers:
        worker.start()
    claimed = dict(results.get(timeout=60) for _ in workers)
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    first, second = claimed.values()
    assert not set(first) & set(second)
    assert sorted(first + second) == sorted(ids)
    with open_store(url) as store:
        owners = {run.id: run.owner for run in store.runs()}
    assert all(owners[i] == owner for owner, got in claimed.items() for i in got)
    engine = create_engine(url)
    with engine.connect() as conn:  # WAL is what lets readers and the writer overlap
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()


# --- several processes on a new store at once -------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def new_urls(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[str]]:
    """Four URLs of databases that do not exist yet (SQLite) or are empty (PostgreSQL)."""
    if request.param == "sqlite":
        yield [f"sqlite:///{tmp_path / f'runs{k}.db'}" for k in range(4)]
        return
    psycopg = pytest.importorskip("psycopg")
    server = request.getfixturevalue("postgres_server")
    admin = f"host={server} user=postgres dbname=postgres"
    names = [f"first_{uuid.uuid4().hex[:12]}" for _ in range(4)]
    with psycopg.connect(admin, autocommit=True) as conn:
        for name in names:
            conn.execute(f'CREATE DATABASE "{name}"')
    yield [f"postgresql+psycopg://postgres@/{name}?host={server}" for name in names]
    with psycopg.connect(admin, autocommit=True) as conn:
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _first_use_worker(urls: list[str], start, results) -> None:
    outcomes = []
    for url in urls:
        start.wait(timeout=120)
        try:
            with open_store(url) as store:
                store.register_study("alpha", "spec", RUNS)
                store.status()
            outcomes.append("ok")
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which asserts
            outcomes.append(f"{type(exc).__name__}: {exc}")
    results.put(outcomes)


@pytest.mark.parametrize("schema", ["new", "existing"])
def test_processes_starting_together_on_a_new_store(new_urls: list[str], schema: str) -> None:
    """Five processes at once create each of four databases (or find its schema) and register
    the same study: neither the tables nor the study's rows may be written twice."""
    if schema == "existing":
        for url in new_urls:
            open_store(url).close()
    context = multiprocessing.get_context("fork")  # cheap to start; the workers use no torch
    start, results = context.Barrier(5), context.Queue()
    workers = [
        context.Process(target=_first_use_worker, args=(new_urls, start, results)) for _ in range(5)
    ]
    for worker in workers:
        worker.start()
    outcomes = [outcome for _ in workers for outcome in results.get(timeout=300)]
    for worker in workers:
        worker.join(timeout=60)
    assert outcomes == ["ok"] * 20, [o for o in outcomes if o != "ok"]
    for url in new_urls:
        with open_store(url) as store:
            assert store.studies() == ["alpha"]
            assert [run.id for run in store.runs(study="alpha")] == IDS


def test_sqlite_waits_for_another_connection_switching_to_wal(tmp_path: Path) -> None:
    """Switching a file to WAL is refused at once, not after busy_timeout, while another
    connection holds the write lock: as when two processes open a new file together."""
    path = tmp_path / "runs.db"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.5, other.execute, ["COMMIT"])
    release.start()
    try:
        with open_store(f"sqlite:///{path}") as store:
            assert store.studies() == []
    finally:
        release.join()
        other.close()


# --- read-only opening, other programs' databases, bad URLs ------------------------------


def test_read_only_open_of_nothing_writes_nothing(tmp_path: Path) -> None:
    missing, empty = tmp_path / "missing.db", tmp_path / "empty.db"
    empty.touch()
    for path in (missing, empty):
        with open_store(f"sqlite:///{path}", read_only=True) as store:
            assert (store.studies(), store.runs(), store.status().empty) == ([], [], True)
            with pytest.raises(StoreError, match="read-only"):
                store.register_study("alpha", "spec", RUNS)
    assert not missing.exists() and empty.stat().st_size == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db"]


def test_read_only_open_reads_and_refuses_writes(url: str) -> None:
    with open_store(url, read_only=True) as store:  # an empty database stays empty
        assert store.studies() == []
    with create_engine(url).connect() as conn:
        assert inspect(conn).get_table_names() == []
    with open_store(url) as store:
        store.register_study("alpha", "spec", RUNS)
    with open_store(url, read_only=True) as store:
        assert [run.id for run in store.runs(study="alpha")] == IDS
        for write in (
            lambda: store.register_study("beta", "spec", []),
            lambda: store.claim(IDS, "host:1"),
            lambda: store.finish(IDS[0], "done"),
        ):
            with pytest.raises(StoreError, match="read-only"):
                write()
    with open_store(url) as store:
        assert store.studies() == ["alpha"]
        assert {run.state for run in store.runs()} == {"pending"}


def test_read_only_open_never_migrates(url: str) -> None:
    open_store(url).close()
    downgrade_to_version_1(url)
    with pytest.raises(StoreError, match="schema version 1, older .* upgrades it"):
        open_store(url, read_only=True)
    engine = create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(SCHEMA_VERSION_QUERY).scalar() == "1"
    engine.dispose()
    set_schema_version(url, SCHEMA_VERSION + 1)
    with pytest.raises(StoreError, match="upgrade minarch"):
        open_store(url, read_only=True)


def test_another_programs_database_is_left_alone(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE users (name VARCHAR(20))"))
    for read_only in (False, True):
        with pytest.raises(StoreError, match="tables but no minarch schema") as info:
            open_store(url, read_only=read_only)
        assert "\n" not in str(info.value)
    with engine.connect() as conn:
        assert inspect(conn).get_table_names() == ["users"]
    engine.dispose()


def test_plan_writes_to_no_store(tmp_path: Path) -> None:
    empty, foreign = tmp_path / "empty.db", tmp_path / "other.db"
    empty.touch()
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE users (name TEXT)")
    before = foreign.read_bytes()
    planned = minarch("plan", "quickstart", "--db", f"sqlite:///{empty}", cwd=tmp_path)
    assert planned.returncode == 0, planned.stderr
    assert empty.stat().st_size == 0
    refused = minarch("plan", "quickstart", "--db", f"sqlite:///{foreign}", cwd=tmp_path)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr
    assert len(error_lines(refused)) == 1
    assert "tables but no minarch schema" in refused.stderr
    assert foreign.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db", "other.db"]


def test_schema_version_that_is_not_a_number(url: str) -> None:
    open_store(url).close()
    set_schema_version(url, "2b")
    with pytest.raises(StoreError, match="schema version '2b' is not a number") as info:
        open_store(url)
    assert "\n" not in str(info.value)


PG = "postgresql+psycopg://"
SECRET_URLS = {  # as written: as shown
    f"{PG}minarch:s3cret@db.example.org:5432/runs": f"{PG}minarch:***@db.example.org:5432/runs",
    f"{PG}minarch:s3c@ret@db.example.org/runs": f"{PG}minarch:***@db.example.org/runs",
    f"{PG}minarch:s3:c/r?et@db.example.org/runs": f"{PG}minarch:***@db.example.org/runs",
    f"{PG}:s3cret@db.example.org/runs": f"{PG}:***@db.example.org/runs",
    f"{PG}minarch:s3cret%40x@db.example.org/runs": f"{PG}minarch:***@db.example.org/runs",
    f"{PG}minarch@db.example.org/runs?password=s3cret": (
        f"{PG}minarch@db.example.org/runs?password=***"
    ),
    f"{PG}db.example.org/runs?sslmode=require&PASSWORD=s3cret&connect_timeout=3": (
        f"{PG}db.example.org/runs?sslmode=require&PASSWORD=***&connect_timeout=3"
    ),
    f"{PG}db.example.org/runs?sslpassword=s3cret": f"{PG}db.example.org/runs?sslpassword=***",
    f"{PG}minarch:s3cret@db.example.org/runs?password=s3cret": (
        f"{PG}minarch:***@db.example.org/runs?password=***"
    ),
    f"{PG}minarch:s3cret@db.example.org:notaport/runs": (
        f"{PG}minarch:***@db.example.org:notaport/runs"
    ),
    "mssql+pyodbc://minarch@dsn?odbc_connect=DSN%3Dx&pwd=s3cret": (
        "mssql+pyodbc://minarch@dsn?odbc_connect=DSN%3Dx&pwd=***"
    ),
}


@pytest.mark.parametrize("secret_url", sorted(SECRET_URLS))
def test_every_password_form_is_masked(secret_url: str) -> None:
    assert mask_url(secret_url) == SECRET_URLS[secret_url]


@pytest.mark.parametrize(
    "plain",
    ["postgresql+psycopg://minarch@db.example.org:5432/runs?sslmode=require", "sqlite:////a/b.db"],
)
def test_urls_without_passwords_are_shown_as_written(plain: str) -> None:
    assert mask_url(plain) == plain


@pytest.mark.parametrize("secret_url", sorted(u for u in SECRET_URLS if u.startswith(PG)))
def test_store_errors_never_show_a_password(secret_url: str) -> None:
    pytest.importorskip("psycopg")
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = secret_url.replace("db.example.org", f"127.0.0.1:{port}")
    with pytest.raises(StoreError, match="cannot open store") as info:
        open_store(url)
    shown = str(info.value)
    assert ("as %40" in shown) == ("s3c@ret" in url), shown
    assert not any(piece in shown for piece in ("s3", "ret@", "@ret", "r?et", "\n")), shown


@pytest.mark.skipif(sys.platform == "win32", reason="os.kill(SIGINT) is POSIX")
def test_an_interrupt_during_a_write_waits_for_its_commit(
    store: Store, monkeypatch: pytest.MonkeyPatch, ctrl_c: None
) -> None:
    """Ctrl-C inside a write transaction is raised after it commits, never inside it."""
    import os
    import signal

    import minarch.store.sql as sql

    serialise = sql._serialise

    def interrupted(conn):
        os.kill(os.getpid(), signal.SIGINT)  # what a user's Ctrl-C does, mid-transaction
        serialise(conn)

    monkeypatch.setattr(sql, "_serialise", interrupted)
    with pytest.raises(KeyboardInterrupt):
        store.register_study("alpha", "name: alpha\n", RUNS)
    monkeypatch.setattr(sql, "_serialise", serialise)
    assert sorted(r.id for r in store.runs(study="alpha")) == IDS  # committed, then raised
    assert store.claim(IDS[:1], "host:1") == IDS[:1]  # and the write lock is free


# --- where a store's files are recorded ------------------------------------------------


def test_paths_under_the_store_folder_are_recorded_relative_to_it(tmp_path, monkeypatch) -> None:
    home = tmp_path / "store"
    home.mkdir()
    url = f"sqlite:///{home / 'runs.db'}"
    monkeypatch.chdir(home)
    with open_store(url) as opened:
        opened.register_study("alpha", "spec", RUNS)
        opened.add_artifact(IDS[0], "weights", "minarch-artifacts/a.pt", "0" * 64, 1)
        opened.add_artifact(IDS[1], "weights", str(tmp_path / "b.pt"), "0" * 64, 1)
    engine = create_engine(url)
    with engine.begin() as conn:
        recorded = list(conn.execute(text("SELECT path FROM artifacts ORDER BY id")).scalars())
    engine.dispose()
    assert recorded == ["minarch-artifacts/a.pt", str(tmp_path / "b.pt")]
    monkeypatch.chdir(tmp_path)  # another folder: the same files
    with open_store(url) as opened:
        found = [a.path for a in opened.artifacts()]
    assert found == [str(home / "minarch-artifacts" / "a.pt"), str(tmp_path / "b.pt")]


def test_a_store_without_an_id_gets_one_and_its_relative_paths_are_adopted(
    tmp_path, monkeypatch
) -> None:
    """Such a store recorded paths relative to the folder `minarch run` ran in."""
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    with open_store(url) as opened:
        opened.register_study("alpha", "spec", RUNS)
    (tmp_path / "minarch-artifacts").mkdir()
    (tmp_path / "minarch-artifacts" / "a.pt").write_bytes(b"w")
    engine = create_engine(url)
    with engine.begin() as conn:  # as an older minarch left it
        conn.execute(meta_table.delete().where(meta_table.c.key == "store_id"))
        conn.execute(
            text(
                "INSERT INTO artifacts (run_id, kind, path, sha256, size, created_at) VALUES "
                f"('{IDS[0]}', 'weights', 'minarch-artifacts/a.pt', '0', 1, '2026-01-01')"
            )
        )
    engine.dispose()
    monkeypatch.chdir(tmp_path.parent)
    with open_store(url) as opened:
        (found,) = opened.artifacts(IDS[0])
        first = opened.id
    assert found.path == str(tmp_path / "minarch-artifacts" / "a.pt")
    with open_store(url) as opened, open_store(f"sqlite:///{tmp_path / 'other.db'}") as other:
        assert opened.id == first != other.id and len(first) == 32
