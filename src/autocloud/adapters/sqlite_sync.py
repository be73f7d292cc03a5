"""Group sync for SQLite: ingest commits without an fsync of their own; one fsync, on another
thread, then makes every commit since the last one durable.

With `synchronous=FULL` every ingest commit waited for an fsync of the WAL on the ingest thread:
~0.6 ms most of the time, but now and then 50-90 ms on this machine's disk, and every such stall
held up every message behind it (BENCHMARKS.md, "Session 7"). A relaxed commit
(`synchronous=NORMAL` for that one transaction) writes its WAL frames into the file and is
visible to every reader at once; `sync()` then fsyncs the WAL file, which covers the frames of
every commit before it, and the ingest acknowledges those messages to the broker only after
that. A process crash loses nothing in between (the frames are in the kernel's page cache); a
power cut may lose commits not yet synced, and those messages were not acknowledged, so the
broker delivers them again.

The fsync goes through one descriptor of the WAL file, opened before the first relaxed commit
and kept: Linux reports a failed write-back to each open descriptor once, so a descriptor of our
own sees every failure since it was opened, even one that another writer's fsync met first.

`checkpoint()` folds the WAL into the database file, off the ingest thread too, after every sync
round. Run right after a commit, it usually gets through the whole WAL before the next commit,
which then writes the WAL from its start again and keeps it small. SQLite syncs the new WAL
header in the commit that starts the WAL over, so that commit still makes one fsync on the
ingest thread, of a few bytes. Spacing checkpoints out (250 ms) made them rarely get through
under load: the WAL grew to the safety net, and then a relaxed commit checkpointed 40 MiB by
itself (BENCHMARKS.md, "Session 7"). A relaxed transaction checkpoints by itself only past
`SAFETY_PAGES`.
"""

import logging
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, event

from autocloud.domain.errors import DurabilityLost

log = logging.getLogger(__name__)
DEFAULT_PAGES = 1000  # SQLite's own wal_autocheckpoint, for every other transaction
SAFETY_PAGES = 10_000  # ~40 MiB: a relaxed commit checkpoints only if `checkpoint` fell behind
_IOERR = 10  # SQLITE_IOERR: the low byte of every extended I/O error code


class WalSync:
    """Relaxes ingest transactions on one SQLite engine and makes them durable later."""

    def __init__(self, engine: Engine) -> None:
        database = engine.url.database or ""
        self._database = database
        self._wal = f"{database}-wal"
        self._folder = str(Path(database).resolve().parent) if database else ""
        self._lock = threading.Lock()  # the kept descriptor
        self._fd: int | None = None
        self._inode: int | None = None
        self._checkpointer: sqlite3.Connection | None = None
        event.listen(engine, "checkin", _strict_again)

    @property
    def active(self) -> bool:
        """False for an in-memory database, which has no file to sync."""
        return self._database not in ("", ":memory:")

    def relax(self, conn: Connection) -> None:
        """Called before the first write of a transaction: its commit does not fsync and does
        not checkpoint; the connection is strict again when it goes back to the pool."""
        if self._fd is None or self._moved():  # else no lock: a sync may hold it a while
            with self._lock:
                try:
                    self._descriptor()  # opened before the commit whose write-back it watches
                except DurabilityLost as exc:
                    log.warning("this ingest commit syncs on its own: %s", exc)
                    return
        raw: Any = conn.connection.dbapi_connection
        raw.relaxed = True  # first: the check-in restores even a half-relaxed connection
        cursor = sqlite3.Cursor(raw)  # the base cursor: a PRAGMA needs no turn as the writer
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA wal_autocheckpoint={SAFETY_PAGES}")
        cursor.close()

    def sync(self) -> None:
        """Make every commit so far durable.

        Raises `DurabilityLost` when the disk refuses the fsync: after a failed fsync the
        kernel may have dropped the pages it could not write, so no later sync can vouch for
        them, and the caller must not acknowledge anything that waited on this one.
        """
        with self._lock:
            # A duplicate shares the kept descriptor's open file, and so its error reporting;
            # the fsync runs outside the lock, so `relax` never waits for the disk.
            fd = os.dup(self._descriptor())
        try:
            os.fsync(fd)
        except OSError as exc:
            raise DurabilityLost(
                f"fsync of {self._wal} failed ({exc}); commits since the last sync may "
                "not be on disk. Check the disk, then restart the platform: messages not "
                "acknowledged are delivered again."
            ) from None
        finally:
            os.close(fd)

    def _moved(self) -> bool:
        """Whether the WAL file is not the one the kept descriptor holds (a new WAL file)."""
        try:
            return os.stat(self._wal).st_ino != self._inode
        except OSError:
            return True

    def _descriptor(self) -> int:
        """The kept descriptor of the WAL file (of the database file while there is no WAL:
        the last connection's close checkpointed it all); a new file is opened anew, and its
        folder synced so that its name survives a power cut. Caller holds the lock."""
        path = self._wal if os.path.exists(self._wal) else self._database
        try:
            inode = os.stat(path).st_ino
            if self._fd is not None and inode == self._inode:
                return self._fd
            fd = os.open(path, os.O_RDONLY)
            folder = os.open(self._folder, os.O_RDONLY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)
        except OSError as exc:
            raise DurabilityLost(f"cannot open {path} to make commits durable ({exc})") from None
        if self._fd is not None:
            os.close(self._fd)
        self._fd, self._inode = fd, os.fstat(fd).st_ino
        return fd

    def checkpoint(self) -> None:
        """Copy the WAL's frames into the database file without waiting for anyone.

        An I/O error raises `DurabilityLost` (the checkpoint's own WAL sync covers commits
        made since the last `sync`); any other failure (busy, locked) is logged, and the next
        round checkpoints again.
        """
        try:
            if self._checkpointer is None:
                self._checkpointer = sqlite3.connect(
                    self._database, isolation_level=None, check_same_thread=False
                )
                # NORMAL: the WAL is synced before the copy and the database file after it.
                self._checkpointer.execute("PRAGMA synchronous=NORMAL")
            self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:
            if getattr(exc, "sqlite_errorcode", 0) & 0xFF == _IOERR:
                raise DurabilityLost(f"SQLite checkpoint hit a disk error ({exc})") from None
            log.warning("SQLite checkpoint failed (%s); trying again after the next sync", exc)

    def close(self) -> None:
        with self._lock:
            if self._checkpointer is not None:
                self._checkpointer.close()
                self._checkpointer = None
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def _strict_again(dbapi_connection: Any, _record: Any) -> None:
    """Pool check-in: a relaxed connection goes back to syncing every commit."""
    if dbapi_connection is None or not getattr(dbapi_connection, "relaxed", False):
        return
    cursor = sqlite3.Cursor(dbapi_connection)
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute(f"PRAGMA wal_autocheckpoint={DEFAULT_PAGES}")
    cursor.close()
    dbapi_connection.relaxed = False
