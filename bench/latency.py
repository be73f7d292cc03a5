"""Publish-to-twin latency, observed on the platform's live stream (SSE `/v1/stream`).

A twin change is published on the stream right after the batch that carries it was
committed and acknowledged, so the arrival of a `twin` event for a message is the moment its
values are in the twin for every reader (the stream is a little *later* than the commit,
never earlier). The bench's publishers put the send time into the message's `ts` (ms), and
the probe subtracts it from the arrival time. Publishers and probe share the machine's clock.

Only VINs of the probe brand are streamed (`?brand=bench-probe`), so the probe measures a
sample without the platform serialising every change of the fleet for it.
"""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import dataclass, field

import httpx


@dataclass
class LatencyProbe:
    """Follows the stream in a thread and keeps one latency sample (ms) per twin event."""

    api: str
    token: str
    brand: str
    samples: list[float] = field(default_factory=list)
    lagged: int = 0
    errors: list[str] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    recording: bool = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="latency-probe", daemon=True)
        self._thread.start()
        if not self.ready.wait(10):
            raise RuntimeError(f"the live stream did not open: {self.errors}")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=20)

    def _run(self) -> None:
        params = {"brand": self.brand, "access_token": self.token}
        timeout = httpx.Timeout(10, read=30)
        try:
            with (
                httpx.Client(base_url=self.api, timeout=timeout) as client,
                client.stream("GET", "/v1/stream", params=params) as response,
            ):
                response.raise_for_status()
                event = ""
                for line in response.iter_lines():
                    if self._stop.is_set():
                        return
                    if line.startswith("event:"):
                        event = line[6:].strip()
                        if event == "ready":
                            self.ready.set()
                    elif line.startswith("data:") and event == "twin" and self.recording:
                        self._sample(line[5:])
        except Exception as exc:  # surfaced in the report, never a hang
            self.errors.append(f"{type(exc).__name__}: {exc}")
            self.ready.set()

    def _sample(self, data: str) -> None:
        arrived_ms = time.time_ns() / 1_000_000
        body = json.loads(data)
        self.lagged += int(body.get("lagged", 0))
        stamps = [s["ts"] for s in body.get("signals", {}).values()]
        if stamps:
            self.samples.append(arrived_ms - max(stamps))


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))
    return ordered[rank]
