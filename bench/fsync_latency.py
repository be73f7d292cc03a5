"""How long an fsync takes on this machine's disk, and how often it stalls.

    .venv/bin/python bench/fsync_latency.py                 # 20 s, 100 fsyncs a second
    .venv/bin/python bench/fsync_latency.py --checkpointer  # with a second writer syncing

Writes `--kib` KiB into a scratch file and fsyncs it, `--rate` times a second for
`--seconds`, as an ingest commit with `synchronous=FULL` did per batch; prints p50, p90, p99,
p99.9 and the longest. `--checkpointer` adds a thread that writes 1,000 random 4 KiB pages
into a second file and fsyncs it every 100 ms, as a WAL checkpoint does (BENCHMARKS.md,
"Session 7"). The scratch files go to `--dir` and are removed at the end.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import threading
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--rate", type=float, default=100.0, help="fsyncs a second")
    p.add_argument("--kib", type=int, default=320, help="written before each fsync")
    p.add_argument("--checkpointer", action="store_true")
    p.add_argument("--dir", default=tempfile.gettempdir())
    args = p.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="fsync-latency-", dir=args.dir))
    stop = threading.Event()
    try:
        if args.checkpointer:
            threading.Thread(target=_checkpointer, args=(folder / "db", stop), daemon=True).start()
        latencies = _measure(folder / "wal", args.seconds, args.rate, args.kib * 1024)
    finally:
        stop.set()
        time.sleep(0.2)
        for leftover in folder.iterdir():
            leftover.unlink()
        folder.rmdir()
    latencies.sort()
    n = len(latencies)

    def at(q: float) -> float:
        return latencies[min(n - 1, int(n * q))]

    print(
        f"{n} fsyncs of {args.kib} KiB{' with a checkpointer' if args.checkpointer else ''}: "
        f"p50 {at(0.5):.2f} ms, p90 {at(0.9):.2f}, p99 {at(0.99):.2f}, "
        f"p99.9 {at(0.999):.2f}, max {latencies[-1]:.2f}"
    )


def _measure(path: Path, seconds: float, rate: float, size: int) -> list[float]:
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    block = os.urandom(size)
    latencies: list[float] = []
    offset = 0
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            os.pwrite(fd, block, offset)
            offset = (offset + size) % (8 << 20)  # an 8 MiB file written round, like a WAL
            started = time.perf_counter()
            os.fsync(fd)
            latencies.append((time.perf_counter() - started) * 1000)
            time.sleep(1 / rate)
    finally:
        os.close(fd)
    return latencies


def _checkpointer(path: Path, stop: threading.Event) -> None:
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    page = os.urandom(4096)
    try:
        while not stop.is_set():
            for _ in range(1000):
                os.pwrite(fd, page, random.randrange(50_000) * 4096)
            os.fsync(fd)
            stop.wait(0.1)
    finally:
        os.close(fd)


if __name__ == "__main__":
    main()
