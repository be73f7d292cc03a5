"""The cost of durable pending alert waits: `bench/alerts.py` with the writer timed.

Runs `bench/alerts.py` unchanged (same arguments) with a timer around
`adapters/sql/alerts.write_pending_changes`, the ingest writer of pending `for_s` waits,
and prints the time spent in it per row and per message. With `--off` the stage emits no
pending-wait record at all (the A/B baseline: waits are then lost on a restart).

    flock /tmp/autocloud-bench.lock .venv/bin/python bench/alerts_pending.py [--off] --rounds 10
"""

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autocloud.adapters.sql import alerts as sql_alerts
from autocloud.domain.alerts import PendingChanges
from autocloud.services import alert_stage


def main() -> None:
    off = "--off" in sys.argv
    if off:
        sys.argv.remove("--off")
    spent = {"s": 0.0, "calls": 0.0, "rows": 0.0}
    real = sql_alerts.write_pending_changes

    def timed(conn: Any, dialect: Any, batches: Sequence[PendingChanges]) -> None:
        start = time.perf_counter()
        real(conn, dialect, batches)
        spent["s"] += time.perf_counter() - start
        spent["calls"] += 1
        spent["rows"] += sum(len(b.started) + len(b.ended) for b in batches)

    sql_alerts.write_pending_changes = timed  # read when the bench builds its store
    if off:
        alert_stage.AlertStage._pending_changes = lambda self: None  # type: ignore[method-assign]
    from bench import alerts

    alerts.main()
    rows = max(spent["rows"], 1)
    label = "pending-wait writer (off)" if off else "pending-wait writer"
    print(
        f"{label}: {spent['calls']:.0f} batches, {spent['rows']:.0f} rows, "
        f"{spent['s'] * 1000:.1f} ms, {spent['s'] / rows * 1e6:.1f} µs a row"
    )


if __name__ == "__main__":
    main()
