"""Group commit: concurrent new commands on SQLite share one transaction and one commit.

Why: SQLite takes one writer at a time and each commit waits for the disk (`synchronous=FULL`:
3-5 ms here). With 8 API clients sending at once, each send waited for the others' commits
one after another: 46 ms (median) before its own transaction could start (BENCHMARKS.md,
commands). Here the senders that arrive while a commit is under way go into the next
transaction together: one commit for all of them, however many there are.

How: a sender queues its statements (a function of the connection) and, if no commit is
under way, leads one: it takes everything queued, runs each in one transaction, commits,
and hands each sender its outcome. Senders that arrived meanwhile wait; the first of them
then leads the next round. When one sender's statements fail (a reused idempotency key),
the shared transaction is rolled back and each sender's statements run again in a
transaction of their own, so one failure is only its own. The statements must be safe to
run again after a rollback (they are: the transaction took everything back).

The commit lock (`writing`) is the command store's: its other writers take turns with it.
PostgreSQL needs none of this (concurrent transactions; the advisory lock orders a vehicle's
sends across processes), and its store does not use it.
"""

import threading
from collections.abc import Callable

from sqlalchemy import Connection, Engine


class _Job[T]:
    def __init__(self, work: Callable[[Connection], T]) -> None:
        self.work = work
        self.woken = threading.Event()  # finished, or its turn to lead
        self.finished = False
        self.result: T | None = None
        self.error: BaseException | None = None

    def outcome(self) -> T:
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]  # set when there is no error


class GroupCommit:
    """Runs writers' statements in shared transactions, one commit per round."""

    def __init__(self, engine: Engine, writing: threading.Lock) -> None:
        self._engine = engine
        self._writing = writing
        self._guard = threading.Lock()
        self._queue: list[_Job[object]] = []
        self._busy = False  # a round is being led
        self.rounds = 0  # commits made (tests, benchmarks)

    def run[T](self, work: Callable[[Connection], T]) -> T:
        """Run `work(conn)` in a committed transaction (shared with other writers); its
        result, or what it raised."""
        job = _Job(work)
        with self._guard:
            self._queue.append(job)  # type: ignore[arg-type]
            lead = not self._busy
            self._busy = True
        if not lead:
            job.woken.wait()
        if not job.finished:  # its turn to lead: its job is in the queue still
            self._lead()
        return job.outcome()

    def _lead(self) -> None:
        with self._guard:
            batch, self._queue = self._queue, []
        try:
            self._round(batch)
        finally:
            for done in batch:
                done.finished = True
                done.woken.set()
            with self._guard:
                if self._queue:
                    self._queue[0].woken.set()  # not finished: it leads the next round
                else:
                    self._busy = False

    def _round(self, batch: list[_Job[object]]) -> None:
        with self._writing:
            try:
                with self._engine.connect() as conn, conn.begin():
                    results = [job.work(conn) for job in batch]
            except BaseException as exc:
                if len(batch) == 1:
                    batch[0].error = exc
                    return
                for job in batch:  # one failed: each on its own, so it fails alone
                    try:
                        with self._engine.connect() as conn, conn.begin():
                            job.result = job.work(conn)
                    except BaseException as alone:
                        job.error = alone
                return
            self.rounds += 1
            for job, result in zip(batch, results, strict=True):
                job.result = result
