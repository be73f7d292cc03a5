"""Where the platform's CPU goes: py-spy's collapsed stacks grouped into the ingest path's parts.

py-spy (`record --format raw --threads`, idle samples off) writes one line per distinct stack:
`thread (tid): name;frame;frame;... count`. Each sample is put in the first group whose rule
matches its stack, so shares add up to 100 % of the platform's *running* samples.

    .venv/bin/python -m bench.profile_summary bench/results/profile-sqlite-<time>.txt
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any

# (group, thread marker, any of these substrings in the stack); first match wins.
_RULES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "paho thread: PUBLISH decode (incl. MQTT 5 properties)",
        "paho-mqtt-client-autocloud-ingest",
        ("decode_publish", "Properties"),
    ),
    (
        "paho thread: on_message -> Inbound -> ingest queue",
        "paho-mqtt-client-autocloud-ingest",
        ("MqttLink._on_message",),
    ),
    (
        "paho thread: callback dispatch (topic matcher)",
        "paho-mqtt-client-autocloud-ingest",
        ("_handle_on_message",),
    ),
    ("paho thread: socket recv", "paho-mqtt-client-autocloud-ingest", ("_sock_recv",)),
    (
        "paho thread: socket send (PUBACKs)",
        "paho-mqtt-client-autocloud-ingest",
        ("_packet_write", "_sock_send"),
    ),
    ("paho thread: network loop (select, bookkeeping)", "paho-mqtt-client-autocloud-ingest", ("",)),
    ("ingest: commit - building row dicts", "): ingest", ("SqlTelemetry._statements",)),
    (
        "ingest: commit - SQLAlchemy parameter processing",
        "): ingest",
        ("construct_params", "_init_compiled", "_compiler", "compile"),
    ),
    (
        "ingest: commit - psycopg executemany (driver, waits for the server)",
        "): ingest",
        ("_pipeline_base", "_cursor_base", "Connection.wait", "_queries", "psycopg"),
    ),
    ("ingest: commit - COMMIT", "): ingest", ("do_commit",)),
    (
        "ingest: commit - sqlite3 executemany (driver + SQLite engine)",
        "): ingest",
        ("do_executemany",),
    ),
    ("ingest: commit - other", "): ingest", ("SqlTelemetry.commit",)),
    ("ingest: stage Record", "): ingest", ("Record.__call__",)),
    ("ingest: stage Validate", "): ingest", ("Validate.__call__",)),
    ("ingest: stage Dedupe", "): ingest", ("Dedupe.__call__", "Dedupe.committed")),
    ("ingest: stage Authorise", "): ingest", ("Authorise.__call__",)),
    ("ingest: stage decode", "): ingest", ("decode_stage",)),
    ("ingest: fan-out to live stream", "): ingest", ("changes (", "Hub.publish")),
    ("ingest: metrics accounting", "): ingest", ("_account",)),
    ("ingest: acknowledgements", "): ingest", ("_ack", ".ack (")),
    ("ingest: other", "): ingest", ("",)),
    ("API threads (/metrics scrapes of the bench)", "AnyIO worker", ("",)),
    ("main thread (uvicorn event loop, live stream)", "MainThread", ("",)),
    ("other threads", "", ("",)),
)


def group_of(stack: str) -> str:
    thread = stack.split(";", 1)[0]
    for group, marker, needles in _RULES:
        if marker in thread and any(needle in stack for needle in needles):
            return group
    return "other threads"


def summarise(raw: Path) -> dict[str, Any]:
    """Share (%) of samples per group, and the functions with the most own samples."""
    groups: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        groups[group_of(stack)] += count
        leaf = stack.rsplit(";", 1)[-1]
        name, _, where = leaf.partition(" (")
        own[f"{name} ({where.split(':')[0].rsplit('/', 1)[-1]})"] += count
    if not total:
        return {"samples": 0}
    return {
        "samples": total,
        "groups_pct": [(k, round(100 * v / total, 1)) for k, v in groups.most_common()],
        "self_pct": [(k, round(100 * v / total, 1)) for k, v in own.most_common(20)],
    }


def main(argv: list[str]) -> None:
    for name in argv:
        result = summarise(Path(name))
        print(f"== {name} ({result['samples']} samples)")
        for group, pct in result.get("groups_pct", []):
            print(f"{pct:5.1f} %  {group}")


if __name__ == "__main__":
    main(sys.argv[1:])
