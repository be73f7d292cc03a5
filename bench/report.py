"""The terminal summary of an ingest benchmark run (rich), read from the JSON report."""

from __future__ import annotations

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


def _raw(report: dict[str, Any], subscriber: str, publishers: int | None = None) -> float | None:
    rates = [
        r["signals_per_s_equivalent"]
        for r in report.get("raw", [])
        if r["subscriber"] == subscriber and (publishers is None or r["publishers"] == publishers)
    ]
    return max(rates) if rates else None


def _memory(backend: dict[str, Any], twins: int) -> str:
    for point in backend.get("memory", []):
        if point["twins"] == twins:
            if not point.get("measured"):
                return f"not measured ({point.get('why', 'failed')})"
            return f"{point['rss_mib']:,.0f} MiB"
    return "not measured"


def rows(report: dict[str, Any]) -> list[tuple[str, list[str], str]]:
    """(measure, value per backend, target) lines of the summary table."""
    backends = report["backends"]
    broker = _raw(report, "mosquitto_sub")
    link = _raw(report, "link")
    sizes = sorted({p["twins"] for b in backends for p in b.get("memory", [])})
    out: list[tuple[str, list[str], str]] = []

    def add(name: str, fn: Any, target: str = "") -> None:
        out.append((name, [fn(b) for b in backends], target))

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
    raw = Table(title="Raw broker baseline (QoS 1, one subscriber)")
    for column in (
        "subscriber",
        "publishers",
        "messages",
        "msg/s",
        "signals/s equiv.",
        "payload B",
    ):
        raw.add_column(column, justify="right")
    for r in report.get("raw", []):
        raw.add_row(
            r["subscriber"],
            str(r["publishers"]),
            f"{r['received']:,}/{r['messages']:,}",
            _num(r["msg_per_s"]),
            _num(r["signals_per_s_equivalent"]),
            str(r["payload_bytes"]),
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
