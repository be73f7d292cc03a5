"""SQLite's group sync (`adapters/sqlite_sync.py`): a relaxed ingest commit skips the fsync
and the checkpoint, the pooled connection is strict again afterwards, `sync` fsyncs one kept
descriptor of the WAL and reports a refused fsync as lost durability, and the checkpoints
after syncs keep the WAL from growing."""

import errno
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from autocloud.adapters import sqlite_sync
from autocloud.adapters.sql.store import SqlStore
from autocloud.adapters.sqlite import DIALECT, create, open_store
from autocloud.adapters.sqlite_sync import WalSync
from autocloud.domain.errors import DurabilityLost
from autocloud.domain.records import WriteBatch
from tests.contract.helpers import SPEED, T0, add_vehicle, frames_of, point


@pytest.fixture
def lite(tmp_path: Path) -> Iterator[SqlStore]:
    store = open_store(f"sqlite:///{tmp_path / 'autocloud.db'}")
    store.registry.add_brand("vw", "Volkswagen", T0)
    yield store
    store.close()


def _batch(store: SqlStore, n: int) -> WriteBatch:
    vehicle = add_vehicle(store, n)
    points = [point(store, vehicle, SPEED, T0 + i, float(i)) for i in range(50)]
    frames = frames_of(points)
    return WriteBatch(received_ms=T0, history=frames, twin=frames)


def _pragmas(store: SqlStore) -> tuple[int, int]:
    with store.engine.connect() as conn:
        synchronous = conn.execute(text("PRAGMA synchronous")).scalar_one()
        pages = conn.execute(text("PRAGMA wal_autocheckpoint")).scalar_one()
    return synchronous, pages


def test_a_relaxed_commit_leaves_the_pooled_connection_strict(lite: SqlStore) -> None:
    assert _pragmas(lite) == (2, sqlite_sync.DEFAULT_PAGES)  # FULL
    seen: list[int] = []
    original = lite.dialect.hot.history

    def spy(conn, rows):  # type: ignore[no-untyped-def]
        # The dialect is shared by every SQLite store of the process: another test's platform
        # still winding down may commit through it meanwhile; only this store's count here.
        if conn.engine is lite.engine:
            seen.append(conn.exec_driver_sql("PRAGMA synchronous").scalar_one())
        original(conn, rows)

    object.__setattr__(lite.dialect.hot, "history", spy)
    try:
        lite.telemetry.commit(_batch(lite, 1), durable=False)
        lite.telemetry.commit(_batch(lite, 2))
    finally:
        object.__setattr__(lite.dialect.hot, "history", original)
    assert seen == [1, 2]  # NORMAL inside the relaxed transaction, FULL in the strict one
    assert _pragmas(lite) == (2, sqlite_sync.DEFAULT_PAGES)


def test_sync_fsyncs_one_kept_descriptor_of_the_wal_opened_before_the_first_relaxed_commit(
    lite: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []
    synced: list[str] = []
    real_open, real_fsync = os.open, os.fsync

    def recording_open(path: str, flags: int, *args: int) -> int:
        opened.append(str(path))
        return real_open(path, flags, *args)

    def recording_fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(sqlite_sync.os, "open", recording_open)
    monkeypatch.setattr(sqlite_sync.os, "fsync", recording_fsync)
    database = str(Path(lite.engine.url.database or "").resolve())
    wal, folder = f"{database}-wal", str(Path(database).parent)
    lite.telemetry.commit(_batch(lite, 1), durable=False)
    assert synced == [folder]  # the WAL opened, its folder synced, before the first commit
    lite.telemetry.sync()
    lite.telemetry.commit(_batch(lite, 2), durable=False)
    lite.telemetry.sync()
    assert synced == [folder, wal, wal]
    assert [Path(p).resolve() for p in opened] == [Path(wal), Path(folder)]  # opened once


def _wal_growth(store: SqlStore, batches: int, *, tidy: bool) -> int:
    """How much the WAL file grew (its size is its high-water mark) over `batches` commits."""
    wal = f"{store.engine.url.database}-wal"
    before = os.path.getsize(wal)
    for n in range(1, batches + 1):
        store.telemetry.commit(_batch(store, n), durable=False)
        store.telemetry.sync()
        if tidy:
            store.telemetry.after_sync()
    return os.path.getsize(wal) - before


def test_checkpoints_after_syncs_keep_the_wal_from_growing(tmp_path: Path) -> None:
    """With a checkpoint after every sync, each commit writes the WAL from its start again;
    without them it grows by every batch (up to the safety net)."""
    sizes = {}
    for tidy in (True, False):
        engine = create(f"sqlite:///{tmp_path / f'tidy-{tidy}.db'}")
        store = SqlStore(engine, DIALECT, deferred=WalSync(engine))
        store.migrate()
        store.registry.add_brand("vw", "Volkswagen", T0)
        try:
            store.telemetry.commit(_batch(store, 100), durable=False)  # the WAL exists
            sizes[tidy] = _wal_growth(store, 40, tidy=tidy)
        finally:
            store.close()
    assert sizes[False] > 1_000_000, sizes  # 40 batches of 50 samples, appended
    assert sizes[True] * 10 < sizes[False], sizes


def test_a_refused_fsync_is_lost_durability(
    lite: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_fsync(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    lite.telemetry.commit(_batch(lite, 1), durable=False)
    monkeypatch.setattr(sqlite_sync.os, "fsync", failing_fsync)
    with pytest.raises(DurabilityLost, match=r"fsync of .*-wal failed"):
        lite.telemetry.sync()


def test_an_in_memory_database_does_not_defer() -> None:
    store = open_store("sqlite:///:memory:")
    try:
        assert not store.telemetry.defers_sync
    finally:
        store.close()
