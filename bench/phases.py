"""The measured phases of the ingest benchmark, each against a running platform.

- `throughput`: a fixed number of messages, published as fast as the broker takes them (or
  at a set pace); the clock runs from the first publish to the moment `/metrics` says the
  last signal is stored; then the database is checked for zero loss.
- `latency`: a paced load (half the sustained rate) for a fixed time while the live stream
  is followed; publish-to-twin latency per message of the probe VINs.
- `memory`: more vehicles are registered and each sends one message, until the platform
  holds N twins; then its resident memory is read.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.broker import Broker, proc_cpu
from bench.fleet import Gateway, PublishResult, collect, run_publishers
from bench.latency import LatencyProbe, percentile
from bench.platform_proc import PROBE_BRAND, Database, Platform, profile, provision

POLL_S = 0.25  # a /metrics scrape cost the platform ~3 ms of CPU (py-spy)
STALL_S = 60.0  # no stored progress for this long ends a phase as failed

# Signal values in history (one row per vehicle and instant holds that sample's signals).
HISTORY_SIGNALS = {
    "sqlite": "SELECT count(*) FROM history, json_each(history.body)",
    "postgres": "SELECT count(*) FROM history, jsonb_object_keys(history.body)",
}


@dataclass
class Machine:
    """CPU time of the machine and of the processes under test, to say who used the cores.

    `db_server_cpu_s` is the CPU of the PostgreSQL backends serving the bench database (0 for
    SQLite, which runs inside the platform process). `steal_s` is time the hypervisor gave to
    other guests. Whatever remains of `machine_busy_s` after the platform, broker, publishers
    and database is `other_cpu_s`: the bench's own process, the kernel, and anything else
    running on the machine at the time.
    """

    platform: Platform
    broker: Broker
    db: Database
    _db_before: dict[int, float] = field(default_factory=dict)

    def sample(self) -> dict[str, float]:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        ticks = [int(x) for x in fields]
        hz = float(os.sysconf("SC_CLK_TCK"))
        steal = ticks[7] if len(ticks) > 7 else 0
        busy = (sum(ticks[:8]) - ticks[3] - ticks[4] - steal) / hz
        db_now = {pid: proc_cpu(pid) for pid in self.db.backend_pids()}
        db_cpu = sum(cpu - self._db_before.get(pid, 0.0) for pid, cpu in db_now.items())
        if not self._db_before:
            self._db_before = db_now
            db_cpu = 0.0
        return {
            "wall_s": time.time(),
            "machine_busy_s": busy,
            "steal_s": steal / hz,
            "platform_cpu_s": self.platform.cpu_seconds(),
            "broker_cpu_s": proc_cpu(self.broker.pid),
            "db_server_cpu_s": db_cpu,
        }

    @staticmethod
    def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        return {k: round(after[k] - before[k], 2) for k in before}


@dataclass
class Progress:
    """Stored-signal counts over time, from /metrics."""

    points: list[tuple[float, int]] = field(default_factory=list)
    reached_at: float | None = None
    dead_letters: int = 0
    stalled: bool = False


def wait_stored(
    platform: Platform,
    target: int | Callable[[], int | None],
    *,
    base: int,
    timeout_s: float,
    on_poll: Callable[[], None] | None = None,
) -> Progress:
    """Poll `/metrics` until `target` more signals than `base` are stored, or nothing moved
    for STALL_S, or `timeout_s` passed. `target` may be a function that returns None while
    the total is not known yet (paced phases: known once the publishers reported)."""
    progress = Progress()
    started = last_move = time.time()
    last = -1
    while True:
        now = time.time()
        stored, dead = platform.stored()
        progress.dead_letters = dead
        if not progress.points or stored - base != progress.points[-1][1]:
            progress.points.append((now, stored - base))
        if stored != last:
            last, last_move = stored, now
        wanted = target() if callable(target) else target
        if wanted is not None and stored - base >= wanted:
            progress.reached_at = now
            return progress
        if now - last_move > STALL_S or now - started > timeout_s:
            progress.stalled = now - last_move > STALL_S
            return progress
        if on_poll is not None:
            on_poll()
        time.sleep(POLL_S)


def dead_letter_reasons(before: dict[str, float], after: dict[str, float]) -> dict[str, int]:
    """Dead letters by reason between two scrapes (empty when there were none)."""
    prefix = 'autocloud_dead_letters_total{reason="'
    out = {
        k[len(prefix) : -2]: int(v - before.get(k, 0.0))
        for k, v in after.items()
        if k.startswith(prefix)
    }
    return {k: v for k, v in out.items() if v}


def stage_seconds(metrics: dict[str, float]) -> dict[str, float]:
    """Sum of seconds each ingest stage (and the commit) took, from the platform's histogram."""
    prefix = 'autocloud_ingest_stage_seconds_sum{stage="'
    return {k[len(prefix) : -2]: v for k, v in metrics.items() if k.startswith(prefix)}


def histogram_quantiles(
    before: dict[str, float], after: dict[str, float], name: str, qs: tuple[float, ...]
) -> dict[str, float | None]:
    """Upper bucket bounds of the q-quantiles of a platform histogram between two scrapes."""
    prefix = name + '_bucket{le="'
    buckets = sorted(
        (float(k[len(prefix) : -2]), after[k] - before.get(k, 0.0))
        for k in after
        if k.startswith(prefix)
    )
    total = buckets[-1][1] if buckets else 0.0
    out: dict[str, float | None] = {}
    for q in qs:
        bound = next((le for le, n in buckets if total and n >= q * total), None)
        out[f"p{round(q * 100)}_le_s"] = bound
    count = after.get(name + "_count", 0.0) - before.get(name + "_count", 0.0)
    total_s = after.get(name + "_sum", 0.0) - before.get(name + "_sum", 0.0)
    out["mean"] = round(total_s / count, 4) if count else None
    return out


def gc_pauses(before: dict[str, float], after: dict[str, float]) -> dict[str, dict[str, float]]:
    """Collections of each GC generation between two scrapes: count, total and longest pause
    (as the upper bound of its bucket), from `autocloud_gc_pause_seconds`."""
    name = "autocloud_gc_pause_seconds"
    out: dict[str, dict[str, float]] = {}
    for gen in ("0", "1", "2"):
        label = f'{{generation="{gen}"}}'
        count = after.get(f"{name}_count{label}", 0.0) - before.get(f"{name}_count{label}", 0.0)
        total = after.get(f"{name}_sum{label}", 0.0) - before.get(f"{name}_sum{label}", 0.0)
        prefix = f'{name}_bucket{{generation="{gen}",le="'
        bounds = sorted(
            (float(k[len(prefix) : -2]), after[k] - before.get(k, 0.0))
            for k in after
            if k.startswith(prefix)
        )
        longest = next((le for le, n in bounds if n >= count), float("inf")) if count else 0.0
        out[gen] = {"count": count, "seconds": round(total, 4), "longest_le_s": longest}
    return out


def _steady_rate(points: list[tuple[float, int]], target: int) -> float | None:
    """Signals/s between 10 % and 90 % of the target: the drain rate without ramp and tail."""
    lo = next((p for p in points if p[1] >= 0.1 * target), None)
    hi = next((p for p in points if p[1] >= 0.9 * target), None)
    if lo is None or hi is None or hi[0] <= lo[0]:
        return None
    return (hi[1] - lo[1]) / (hi[0] - lo[0])


def throughput(
    platform: Platform,
    broker: Broker,
    db: Database,
    gateway: Gateway,
    *,
    vins: int,
    messages: int,
    signals: int,
    publishers: int,
    rate: float,
    profile_to: Path | None,
    timeout_s: float,
    client: str = "lean",
) -> dict[str, Any]:
    """Sustained throughput with zero loss; see the module docstring."""
    rounds = max(1, messages // vins)
    expected = rounds * vins * signals
    base, dead_before = platform.stored()
    machine = Machine(platform, broker, db)
    metrics_before = platform.metrics()
    processes, start_at = run_publishers(
        gateway,
        range(vins),
        publishers,
        rounds=rounds,
        seq_start=1,
        signals=signals,
        rate=rate,
        tag="tp",
        client=client,
    )
    time.sleep(max(0.0, start_at - time.time()))
    cpu_before = machine.sample()
    spy = profile(platform.pid, min(30.0, timeout_s), profile_to) if profile_to else None
    progress = wait_stored(platform, expected, base=base, timeout_s=timeout_s)
    cpu = Machine.delta(cpu_before, machine.sample())
    sent = collect(processes)
    if spy is not None:
        spy.wait(timeout=120)
    stages = {
        k: round(v - stage_seconds(metrics_before).get(k, 0.0), 3)
        for k, v in stage_seconds(platform.metrics()).items()
    }
    # While sending (the processes' start-up, ~0.3 s each, falls before the measured window).
    cpu["publishers_cpu_s"] = round(sum(r.send_cpu_s for r in sent), 2)
    cpu["publishers_total_cpu_s"] = round(sum(r.cpu_s for r in sent), 2)
    accounted = ("platform_cpu_s", "broker_cpu_s", "publishers_cpu_s", "db_server_cpu_s")
    cpu["other_cpu_s"] = round(cpu["machine_busy_s"] - sum(cpu[k] for k in accounted), 2)
    wall = cpu["wall_s"]
    cores = {
        k.removesuffix("_cpu_s").removesuffix("_s"): round(cpu[k] / wall, 2) if wall else None
        for k in ("machine_busy_s", *accounted, "other_cpu_s")
    }
    metrics_after = platform.metrics()
    first = min(r.first_send for r in sent)
    last_ack = max(r.last_ack for r in sent)
    total_sent = sum(r.sent for r in sent)
    end = progress.reached_at
    seconds = (end - first) if end else None
    history_rows = db.count(HISTORY_SIGNALS[db.kind])
    dead_rows = db.count("SELECT count(*) FROM dead_letters")
    return {
        "messages_sent": total_sent,
        "messages_acked_by_broker": sum(r.acked for r in sent),
        "signals_per_message": signals,
        "distinct_vins": vins,
        "signals_expected": expected,
        "signals_stored_metric": progress.points[-1][1] if progress.points else 0,
        "history_signals_in_db": history_rows,
        "dead_letters": progress.dead_letters - dead_before,
        "dead_letter_rows_in_db": dead_rows,
        "dead_letter_reasons": dead_letter_reasons(metrics_before, metrics_after),
        "zero_loss": bool(end) and history_rows >= expected and dead_rows == 0,
        "publish_seconds": round(last_ack - first, 3),
        "publish_msg_per_s": round(total_sent / (last_ack - first), 1),
        "publishers_window_wait_s": max(r.window_wait_s for r in sent),
        "seconds_first_publish_to_last_stored": round(seconds, 3) if seconds else None,
        "signals_per_s": round(expected / seconds, 1) if seconds else None,
        "msg_per_s": round(total_sent / seconds, 1) if seconds else None,
        "steady_signals_per_s_10_90": _round(_steady_rate(progress.points, expected)),
        "cpu_seconds": cpu,
        "cores_used": cores,  # CPU seconds / wall seconds of the phase, per party
        "publisher_cpu_us_per_msg": round(1e6 * cpu["publishers_cpu_s"] / total_sent, 1)
        if total_sent
        else None,
        "loadavg_after": Path("/proc/loadavg").read_text().split()[:3],
        "stage_seconds": stages,
        "progress": [
            (round(t - first, 2), n)
            for t, n in progress.points[:: max(1, len(progress.points) // 200)]
        ],
        "profile": str(profile_to) if spy is not None else None,
        "seq_next": rounds + 1,
    }


def paced(
    platform: Platform,
    gateway: Gateway,
    *,
    vins: int,
    signals: int,
    publishers: int,
    rate: float,
    duration_s: float,
    seq_start: int,
    probe: bool,
    client: str = "lean",
    machine: Machine | None = None,
) -> dict[str, Any]:
    """A paced load of `rate` messages/s for `duration_s`.

    Says whether the platform kept up (how far stored signals trailed the sent ones when
    publishing stopped, and how long it took to drain) and, with `probe`, the
    publish-to-twin latency of the probe VINs from the live stream, next to the platform's
    own view (broker delivery to commit, `autocloud_ingest_lag_seconds`).
    """
    probes = (
        [LatencyProbe(api, platform.token, PROBE_BRAND) for api in platform.apis] if probe else []
    )
    for latency_probe in probes:
        latency_probe.start()
        latency_probe.recording = True
    base, dead_before = platform.stored()
    metrics_before = platform.metrics()
    processes, start_at = run_publishers(
        gateway,
        range(vins),
        publishers,
        rounds=0,
        seq_start=seq_start,
        signals=signals,
        rate=rate,
        duration_s=duration_s,
        tag=f"paced{round(rate)}",
        client=client,
    )
    done: list[PublishResult] = []

    def total() -> int | None:
        """Signals sent, once every publisher has reported (None before)."""
        if not done and all(not p.is_alive() for p in processes):
            done.extend(collect(processes))
        return sum(r.sent for r in done) * signals if done else None

    time.sleep(max(0.0, start_at - time.time()))
    cpu_before = machine.sample() if machine is not None else None
    progress = wait_stored(platform, total, base=base, timeout_s=duration_s + 300)
    cpu = (
        Machine.delta(cpu_before, machine.sample())
        if machine is not None and cpu_before is not None
        else None
    )
    if probes:
        time.sleep(1.0)  # the last stream events
    for latency_probe in probes:
        latency_probe.recording = False
        latency_probe.stop()
    if not done:
        done.extend(collect(processes))
    metrics_after = platform.metrics()
    sent = sum(r.sent for r in done)
    stored = progress.points[-1][1] if progress.points else 0
    first = min(r.first_send for r in done)
    last = max(r.last_send for r in done)
    out: dict[str, Any] = {
        "offered_msg_per_s": round(rate, 1),
        "achieved_msg_per_s": round(sent / (last - first), 1) if last > first else None,
        "achieved_signals_per_s": round(sent * signals / (last - first), 1)
        if last > first
        else None,
        "duration_s": duration_s,
        "messages_sent": sent,
        "signals_stored": stored,
        "zero_loss": stored == sent * signals and progress.dead_letters == dead_before,
        "signals_behind_when_publishing_stopped": sent * signals - _stored_at(progress, last),
        "drain_s_after_last_publish": (
            round(progress.reached_at - max(r.last_ack for r in done), 2)
            if progress.reached_at
            else None
        ),
        "dead_letter_reasons": dead_letter_reasons(metrics_before, metrics_after),
        "publishers_cpu_s": round(sum(r.send_cpu_s for r in done), 2),
        # Longest a publisher waited with its window of unacknowledged messages full: the
        # broker acknowledging slower than the pace (then `achieved` < `offered`).
        "publishers_window_wait_s": max(r.window_wait_s for r in done),
        "last_puback_after_last_send_s": round(max(r.last_ack for r in done) - last, 2),
        "publisher_cpu_us_per_msg": round(1e6 * sum(r.send_cpu_s for r in done) / sent, 1)
        if sent
        else None,
        "platform_ingest_lag": histogram_quantiles(
            metrics_before, metrics_after, "autocloud_ingest_lag_seconds", (0.5, 0.99)
        ),
        "platform_batch_messages": histogram_quantiles(
            metrics_before, metrics_after, "autocloud_ingest_batch_messages", (0.5,)
        ),
        "platform_gc_pauses": gc_pauses(metrics_before, metrics_after),
        "seq_next": seq_start + max(r.rounds_done for r in done) + 1,
        "start_at": start_at,
    }
    if cpu is not None:  # from the start until everything was stored
        cpu["publishers_cpu_s"] = out["publishers_cpu_s"]
        out["cpu_seconds"] = cpu
        out["cores_used"] = {
            k.removesuffix("_cpu_s"): round(cpu[k] / cpu["wall_s"], 2) if cpu["wall_s"] else None
            for k in ("platform_cpu_s", "publishers_cpu_s", "broker_cpu_s", "db_server_cpu_s")
        }
    if probes:
        samples = [ms for latency_probe in probes for ms in latency_probe.samples]
        out |= {
            "samples": len(samples),
            "p50_ms": _round(percentile(samples, 0.50)),
            "p90_ms": _round(percentile(samples, 0.90)),
            "p99_ms": _round(percentile(samples, 0.99)),
            "max_ms": _round(max(samples) if samples else None),
            "stream_lagged": sum(latency_probe.lagged for latency_probe in probes),
            "stream_errors": [e for latency_probe in probes for e in latency_probe.errors],
        }
    return out


def _stored_at(progress: Progress, when: float) -> int:
    """Signals stored by `when` (the last poll at or before it)."""
    earlier = [n for t, n in progress.points if t <= when]
    return earlier[-1] if earlier else 0


def kept_up(result: dict[str, Any]) -> bool:
    """A paced run is sustainable if nothing was lost, the publishers achieved the pace
    (within 5 %: not held back by a broker slow to acknowledge), and the platform drained
    its backlog within 2 s (or a tenth of the run) after the last publish."""
    drain = result["drain_s_after_last_publish"]
    achieved = result["achieved_msg_per_s"] or 0.0
    return (
        bool(result["zero_loss"])
        and achieved >= 0.95 * result["offered_msg_per_s"]
        and drain is not None
        and drain <= max(2.0, result["duration_s"] / 10)
    )


def settle_broker(broker: Broker, *, idle_cores: float = 0.1, max_s: float = 90.0) -> float:
    """Wait until the broker is idle (below `idle_cores` over a second), at most `max_s`;
    return the seconds waited. After the throughput phase's backlog Mosquitto 2.0.11 stays
    busy for tens of seconds (`db__message_delete_outgoing`, BENCHMARKS.md "Publishers"),
    during which it acknowledges publishers late: a paced phase started then measures that."""
    started = time.monotonic()
    while time.monotonic() - started < max_s:
        before = proc_cpu(broker.pid)
        time.sleep(1.0)
        if proc_cpu(broker.pid) - before < idle_cores:
            break
    return round(time.monotonic() - started, 1)


def memory(
    platform: Platform,
    db: Database,
    gateway: Gateway,
    *,
    have: int,
    seq_start: int,
    targets: list[int],
    signals: int,
    publishers: int,
    probe_stride: int,
    fleet_vins: int,
    deadline: float,
    client: str = "lean",
) -> list[dict[str, Any]]:
    """Resident memory of a freshly started platform as it learns more and more twins.

    Level one: each of the `have` registered VINs sends one message (the platform's caches
    learn them). Each further level registers the VINs up to the target and each new VIN
    sends one message of `signals` signals. RSS and peak RSS are read after every level.
    """
    out: list[dict[str, Any]] = []
    levels = [have, *sorted(t for t in targets if t > have)]
    low = 0
    for target in levels:
        if time.time() > deadline:
            out.append({"twins": target, "measured": False, "why": "time budget"})
            continue
        provision_s = provision(db, low, target - low, probe_stride, fleet_vins) if low else 0.0
        base, dead_before = platform.stored()
        started = time.time()
        processes, _ = run_publishers(
            gateway,
            range(low, target),
            publishers,
            rounds=1,
            seq_start=1 if low else seq_start,
            signals=signals,
            tag=f"mem{target}",
            client=client,
        )
        expected = (target - low) * signals
        metrics_before = platform.metrics()
        peak = _Peak(platform)

        progress = wait_stored(
            platform,
            expected,
            base=base,
            timeout_s=max(60.0, deadline - time.time()),
            on_poll=peak.sample,
        )
        collect(processes)
        ok = progress.reached_at is not None and progress.dead_letters == dead_before
        ingest_s = (progress.reached_at or time.time()) - started - 3.0
        time.sleep(2.0)
        point = _memory_point(platform, db, target, provision_s, ingest_s, ok)
        point |= {
            "max_rss_while_ingesting_mib": round(peak.kb / 1024, 1),
            "signals_expected": expected,
            "signals_stored": progress.points[-1][1] if progress.points else 0,
            "reached": progress.reached_at is not None,
            "stalled": progress.stalled,
            "dead_letter_reasons": dead_letter_reasons(metrics_before, platform.metrics()),
        }
        out.append(point)
        if not ok:
            break
        low = target
    return out


@dataclass
class _Peak:
    """Highest RSS seen at the polls of one memory level."""

    platform: Platform
    kb: int = 0

    def sample(self) -> None:
        self.kb = max(self.kb, self.platform.rss_kb() or 0)


def _memory_point(
    platform: Platform,
    db: Database,
    twins: int,
    provision_s: float,
    ingest_s: float,
    ok: bool,
) -> dict[str, Any]:
    rss, hwm = platform.rss_kb() or 0, platform.hwm_kb() or 0
    return {
        "twins": twins,
        "measured": ok,
        "twins_in_db": db.count("SELECT count(DISTINCT vehicle_id) FROM twin"),
        "twin_rows_in_db": db.count("SELECT count(*) FROM twin"),
        "rss_mib": round(rss / 1024, 1),
        "peak_rss_mib": round(hwm / 1024, 1),
        "provision_s": round(provision_s, 1),
        "ingest_s": round(ingest_s, 1),
        "db_bytes": db.size_bytes(),
    }


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None or value != value else round(value, digits)


__all__ = ["Machine", "Progress", "kept_up", "memory", "paced", "throughput"]
