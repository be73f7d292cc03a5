"""Mosquitto with a backlog for a slow platform consumer: packet-id reuse and broker CPU.

    flock /tmp/autocloud-bench.lock .venv/bin/python bench/lean_backlog.py
    .venv/bin/python bench/lean_backlog.py --messages 100000 --consume-rate 3500 \\
        --receive-maximum 4000 --paced-rate 3000 --paced-s 20

What: a private Mosquitto (the platform's configuration), the platform's `MqttLink` as the
consumer, acknowledging batches of up to 2,000 messages after a pretend commit that takes
`batch / consume_rate` seconds (what the ingest worker does, without ingest), then the bench's
lean publishers pushing `--messages` as fast as the broker takes them (a backlog, as in the
ingest benchmark's throughput phase), then, once the backlog is consumed, a paced load.

Every 2 s it prints the broker's CPU, what the consumer has acknowledged, and how many
PUBLISHes arrived (not DUP) with a packet id the consumer had not acknowledged yet: MQTT
forbids reusing an id before its PUBACK, so each is a broker fault. At the end: whether the
paced publishers achieved their pace and how long they waited on PUBACKs. See BENCHMARKS.md,
"Findings in the platform", 6.
"""

from __future__ import annotations

import argparse
import queue
import sys
import tempfile
import threading
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import autocloud.adapters.mqtt_link as mqtt_link
from autocloud.ports.link import Inbound
from bench.broker import proc_cpu, running_broker
from bench.fleet import Gateway, collect, run_publishers

BATCH = 2000


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--messages", type=int, default=100_000, help="backlog burst (messages)")
    p.add_argument("--vins", type=int, default=10_000)
    p.add_argument("--consume-rate", type=float, default=3500.0, help="consumer msg/s")
    p.add_argument(
        "--receive-maximum",
        type=int,
        default=0,
        help="override MqttLink's RECEIVE_MAXIMUM in this process (0 = the platform's)",
    )
    p.add_argument("--paced-rate", type=float, default=3000.0, help="msg/s after the backlog")
    p.add_argument("--paced-s", type=float, default=20.0, help="0 = no paced phase")
    args = p.parse_args(argv)
    if args.receive_maximum:
        mqtt_link.RECEIVE_MAXIMUM = args.receive_maximum  # read at each CONNECT
    work = Path(tempfile.mkdtemp(prefix="autocloud-backlog-"))
    with running_broker(work / "mosquitto") as broker:
        password = broker.add_client(
            "bench-backlog",
            [
                ("publishClientSend", "vehicles/#"),
                ("subscribePattern", "$share/+/vehicles/#"),
                ("publishClientReceive", "vehicles/#"),
            ],
        )
        gateway = Gateway(broker.host, broker.port, "bench-backlog", password)
        link = mqtt_link.MqttLink(
            broker.host, broker.port, username=gateway.username, password=password
        )
        inbox: queue.Queue[Inbound] = queue.Queue()
        unacked: set[object] = set()
        lock = threading.Lock()
        counts = {"acked": 0, "reused_ids": 0}

        def sink(message: Inbound) -> None:
            token = message.token
            mid = token[1] if isinstance(token, tuple) else None
            with lock:
                if mid in unacked:
                    counts["reused_ids"] += 1
                unacked.add(mid)
            inbox.put(message)

        def consumer() -> None:
            while True:
                batch = [inbox.get()]
                while len(batch) < BATCH:
                    try:
                        batch.append(inbox.get_nowait())
                    except queue.Empty:
                        break
                time.sleep(len(batch) / args.consume_rate)  # the pretend commit
                link.ack(batch)
                with lock:
                    counts["acked"] += len(batch)
                    for message in batch:
                        token = message.token
                        unacked.discard(token[1] if isinstance(token, tuple) else None)

        stop = threading.Event()

        def monitor() -> None:
            started, last = time.monotonic(), proc_cpu(broker.pid)
            while not stop.wait(2.0):
                now = proc_cpu(broker.pid)
                print(
                    f"  {time.monotonic() - started:5.0f} s: broker {(now - last) / 2:.2f} cores, "
                    f"consumer acked {counts['acked']:,}, ids reused while unacked "
                    f"{counts['reused_ids']:,}",
                    flush=True,
                )
                last = now

        link.start(sink)
        threading.Thread(target=consumer, daemon=True).start()
        threading.Thread(target=monitor, daemon=True).start()
        time.sleep(1.0)
        rounds = max(1, args.messages // args.vins)
        total = rounds * args.vins
        processes, _ = run_publishers(
            gateway, range(args.vins), 2, rounds=rounds, seq_start=1, signals=20, tag="burst"
        )
        done = collect(processes)
        span = max(r.last_ack for r in done) - min(r.first_send for r in done)
        print(f"burst: {total:,} messages acknowledged by the broker at {total / span:,.0f} msg/s")
        while counts["acked"] < total:
            time.sleep(0.2)
        print(f"backlog consumed; reused ids: {counts['reused_ids']:,}")
        if args.paced_s > 0:
            processes, _ = run_publishers(
                gateway,
                range(args.vins),
                2,
                rounds=0,
                seq_start=rounds + 1,
                signals=20,
                rate=args.paced_rate,
                duration_s=args.paced_s,
                tag="paced",
            )
            done = collect(processes)
            sent = sum(r.sent for r in done)
            span = max(r.last_send for r in done) - min(r.first_send for r in done)
            print(
                f"paced {args.paced_rate:,.0f} msg/s: achieved {sent / span:,.0f} msg/s, "
                f"publishers waited on PUBACKs {max(r.window_wait_s for r in done):.1f} s "
                f"of {args.paced_s:g}"
            )
        stop.set()
        link.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
