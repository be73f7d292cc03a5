"""The terminal summary of an ingest benchmark run (rich), read from the JSON report."""

from __future__ import annotations

import statistics
from typing import Any

from rich.console import Console
from rich.table import Table

TARGET_SIGNALS_PER_S = 250_000
TARGET_P99_MS = 100.0
TARGET_1M_TWINS_MIB = 2048.0


def _num(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}{unit}" if abs(value) >= 100 else f"{value:,.1f}{unit}"


RawKey = tuple[str, str, int]  # subscriber, publisher client, publisher count


def _median_of(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def raw_medians(report: dict[str, Any]) -> dict[RawKey, dict[str, Any]]:
    """Median msg/s (and range) of each raw baseline over its repeats. Reports from before
    2026-11-22 11:30 UTC have no `publisher`: those ran `mosquitto_pub`."""
    groups: dict[RawKey, list[dict[str, Any]]] = {}
    for r in report.get("raw", []):
        key = (r["subscriber"], r.get("publisher", "mosquitto_pub"), r["publishers"])
        groups.setdefault(key, []).append(r)
    out: dict[RawKey, dict[str, Any]] = {}
    for key, runs in groups.items():
        rates = sorted(r["msg_per_s"] for r in runs)
        out[key] = {
            "publisher_cpu_us_per_msg": _median_of(runs, "publisher_cpu_us_per_msg"),
            "broker_cpu_us_per_msg": _median_of(runs, "broker_cpu_us_per_msg"),
            "subscriber_cpu_us_per_msg": _median_of(runs, "subscriber_cpu_us_per_msg"),
            "runs": len(runs),
            "complete": all(r["received"] == r["messages"] for r in runs),
            "median_msg_per_s": statistics.median(rates),
            "min_msg_per_s": rates[0],
            "max_msg_per_s": rates[-1],
            "payload_bytes": runs[0]["payload_bytes"],
            "signals_per_s_equivalent": statistics.median(
                r["signals_per_s_equivalent"] for r in runs
            ),
        }
    return out


def _raw(report: dict[str, Any], subscriber: str) -> float | None:
    """The best median of a subscriber kind (over publisher clients and counts), in signals/s."""
    rates = [
        v["signals_per_s_equivalent"]
        for (sub, _, _), v in raw_medians(report).items()
        if sub == subscriber
    ]
    return max(rates) if rates else None


def _memory(backend: dict[str, Any], twins: int) -> str:
    for point in backend.get("memory", []):
        if point["twins"] == twins:
            if not point.get("measured"):
                return f"not measured ({point.get('why', 'failed')})"
            return f"{point['rss_mib']:,.0f} MiB"
    return "not measured"


def _cell(fn: Any, backend: dict[str, Any]) -> str:
    """One table cell; "-" for a phase that did not run."""
    try:
        return str(fn(backend))
    except (KeyError, TypeError):
        return "-"


def rows(report: dict[str, Any]) -> list[tuple[str, list[str], str]]:
    """(measure, value per backend, target) lines of the summary table."""
    backends = report["backends"]
    broker = _raw(report, "mosquitto_sub")
    link = _raw(report, "link")
    sizes = sorted({p["twins"] for b in backends for p in b.get("memory", [])})
    out: list[tuple[str, list[str], str]] = []

    def add(name: str, fn: Any, target: str = "") -> None:
        out.append((name, [_cell(fn, b) for b in backends], target))

    add(
        "sustained signals/s (zero loss)",
        lambda b: _num(b["throughput"]["signals_per_s"]),
        f"≥ {TARGET_SIGNALS_PER_S:,}",
    )
    add("  messages/s", lambda b: _num(b["throughput"]["msg_per_s"]))
    add(
        "  steady drain rate 10-90 % (signals/s)",
        lambda b: _num(b["throughput"]["steady_signals_per_s_10_90"]),
    )
    add(
        "  cores used: platform / publishers / broker / DB server",
        lambda b: " / ".join(
            str(b["throughput"]["cores_used"][k])
            for k in ("platform", "publishers", "broker", "db_server")
        ),
    )
    add(
        "  publishers' CPU per message",
        lambda b: _num(b["throughput"]["publisher_cpu_us_per_msg"], " µs"),
    )
    add(
        "  zero loss (DB rows = sent x signals, no dead letters)",
        lambda b: "yes" if b["throughput"]["zero_loss"] else "NO",
    )
    if broker:
        add(
            "  fraction of raw Mosquitto -> mosquitto_sub",
            lambda b: f"{100 * (b['throughput']['signals_per_s'] or 0) / broker:.1f} %",
        )
    if link:
        add(
            "  fraction of the platform's MQTT link alone",
            lambda b: f"{100 * (b['throughput']['signals_per_s'] or 0) / link:.1f} %",
        )
    add(
        "paced at the measured rate: kept up",
        lambda b: (
            ", ".join(
                f"{c['achieved_msg_per_s']:,.0f} msg/s {'yes' if c['kept_up'] else 'no'}"
                for c in b.get("paced_checks", [])
            )
            or "-"
        ),
    )
    add("latency load (signals/s achieved)", lambda b: _num(b["latency"]["achieved_signals_per_s"]))
    add("publish->twin p50", lambda b: _num(b["latency"]["p50_ms"], " ms"))
    add(
        "publish->twin p99",
        lambda b: _num(b["latency"]["p99_ms"], " ms"),
        f"≤ {TARGET_P99_MS:g} ms",
    )
    add(
        "  platform's own ingest lag p50 / p99 (bucket bound)",
        lambda b: "≤ {} / ≤ {} s".format(
            b["latency"]["platform_ingest_lag"]["p50_le_s"],
            b["latency"]["platform_ingest_lag"]["p99_le_s"],
        ),
    )
    add(
        "  samples / zero loss",
        lambda b: f"{b['latency']['samples']:,} / {'yes' if b['latency']['zero_loss'] else 'NO'}",
    )
    for twins in sizes:
        target = f"≤ {TARGET_1M_TWINS_MIB:,.0f} MiB" if twins == 1_000_000 else ""
        add(f"platform RSS with {twins:,} twins", lambda b, t=twins: _memory(b, t), target)
    if 1_000_000 not in sizes:
        out.append(
            (
                "platform RSS with 1,000,000 twins",
                ["not measured"] * len(backends),
                f"≤ {TARGET_1M_TWINS_MIB:,.0f} MiB",
            )
        )
    return out


def print_summary(report: dict[str, Any]) -> None:
    """Print the machine, the raw baselines and the per-database results."""
    console = Console(width=max(Console().width, 130))
    m = report["machine"]
    console.print(
        f"[bold]Machine[/]: {m['cpus']} CPUs ({m['cpu_model']}), {m['memory_gib']} GiB, "
        f"{m['os']}; publishers, Mosquitto, the platform and the database share the CPUs."
    )
    raw = Table(title="Raw broker baseline (QoS 1, one subscriber; median of repeats)")
    columns = (
        "subscriber",
        "publishers",
        "runs",
        "msg/s (min-max)",
        "signals/s equiv.",
        "CPU µs/msg: pub / broker / sub",
    )
    for column in columns:
        raw.add_column(column, justify="right")
    for (subscriber, client, publishers), r in raw_medians(report).items():
        raw.add_row(
            subscriber,
            f"{publishers} x {client}",
            f"{r['runs']}{'' if r['complete'] else ' (incomplete!)'}",
            f"{_num(r['median_msg_per_s'])} "
            f"({_num(r['min_msg_per_s'])}-{_num(r['max_msg_per_s'])})",
            _num(r["signals_per_s_equivalent"]),
            " / ".join(
                _num(r[k])
                for k in (
                    "publisher_cpu_us_per_msg",
                    "broker_cpu_us_per_msg",
                    "subscriber_cpu_us_per_msg",
                )
            ),
        )
    console.print(raw)
    if not report["backends"]:
        return
    table = Table(title="Autocloud ingest (Mosquitto -> platform -> database)")
    table.add_column("measure")
    for backend in report["backends"]:
        table.add_column(backend["db"], justify="right")
    table.add_column("target", justify="right")
    for name, values, target in rows(report):
        table.add_row(name, *values, target)
    console.print(table)
