"""Mosquitto with a backlog for a slow platform consumer: packet-id reuse and broker CPU.

    flock /tmp/autocloud-bench.lock .venv/bin/python bench/lean_backlog.py
    .venv/bin/python bench/lean_backlog.py --messages 100000 --consume-rate 3500 \\
        --receive-maximum 4000 --paced-rate 3000 --paced-s 20

What: a private Mosquitto (the platform's configuration), the platform's `MqttLink` as the
consumer, acknowledging batches of up to 2,000 messages after a pretend commit that takes
`batch / consume_rate` seconds (what the ingest worker does, without ingest), then the bench's
lean publishers pushing `--messages` as fast as the broker takes them (a backlog, as in the
ingest benchmark's throughput phase), then, once the backlog is consumed, a paced load.

A wiretap on the link's packet functions (`mqtt_wire.read_packets` and `pubacks`) keeps the
broker's in-flight list as the consumer sees it: every PUBLISH that is not a DUP of an id still
outstanding adds an entry, every PUBACK removes one of its id (Mosquitto removes the first
match). From that it reports, every 2 s and at the end: the entries in flight (now and the
maximum) against the Receive Maximum the link asked for, the first moment the broker sent a
PUBLISH (not DUP) with an id still in flight and how many did, and PUBACKs for an id with no
entry left (an ack the broker cannot match). Plus the broker's CPU, while the backlog is
consumed and for a few idle seconds after it, and whether the paced publishers achieved their
pace and how long they waited on PUBACKs. See BENCHMARKS.md, "Findings in the platform", 6.
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
from autocloud.adapters import mqtt_wire
from autocloud.ports.link import Inbound
from bench.broker import proc_cpu, running_broker
from bench.fleet import Gateway, collect, run_publishers

BATCH = 2000
IDLE_S = 4.0  # broker CPU measured this long after the backlog is consumed


class Wiretap:
    """The broker's in-flight list for the link's session, as seen on the wire."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.started = time.monotonic()
        self.entries: dict[int, int] = {}  # packet id -> entries the broker holds with it
        self.in_flight = self.max_in_flight = self.window_max = 0
        self.publishes = self.dups = self.reused = self.pubacks = self.unknown_acks = 0
        self.first_reuse: tuple[float, int, int] | None = None  # (s, in flight, receive max)
        self.first_over: float | None = None  # first moment in flight > receive maximum
        self._read, self._pubacks = mqtt_wire.read_packets, mqtt_wire.pubacks

    def install(self) -> None:
        mqtt_wire.read_packets = self._tap_read
        mqtt_wire.pubacks = self._tap_pubacks

    def _tap_read(
        self,
        buffer: bytearray,
        mqtt5: bool,
        publishes: list[mqtt_wire.Publish],
        others: list[mqtt_wire.Packet],
    ) -> None:
        start = len(publishes)
        self._read(buffer, mqtt5, publishes, others)
        now = time.monotonic() - self.started
        limit = mqtt_link.RECEIVE_MAXIMUM
        with self.lock:
            entries = self.entries
            for p in publishes[start:]:
                if not p.qos:
                    continue
                self.publishes += 1
                held = entries.get(p.mid, 0)
                if p.dup:
                    self.dups += 1
                    if held:
                        continue  # a redelivery of an entry the model already has
                elif held:
                    self.reused += 1
                    if self.first_reuse is None:
                        self.first_reuse = (now, self.in_flight, limit)
                entries[p.mid] = held + 1
                self.in_flight += 1
            if self.in_flight > self.max_in_flight:
                self.max_in_flight = self.in_flight
            if self.in_flight > self.window_max:
                self.window_max = self.in_flight
            if self.first_over is None and self.in_flight > limit:
                self.first_over = now

    def _tap_pubacks(self, mids: list[int]) -> bytes:
        with self.lock:
            entries = self.entries
            for mid in mids:
                self.pubacks += 1
                held = entries.get(mid, 0)
                if not held:
                    self.unknown_acks += 1
                    continue
                self.in_flight -= 1
                if held == 1:
                    del entries[mid]
                else:
                    entries[mid] = held - 1
        return self._pubacks(mids)

    def interval_max(self) -> int:
        """The most entries in flight since the last call."""
        with self.lock:
            peak, self.window_max = self.window_max, self.in_flight
            return peak


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
    print(f"link: {mqtt_link.__file__}, Receive Maximum {mqtt_link.RECEIVE_MAXIMUM:,}")
    tap = Wiretap()
    tap.install()
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
        counts = {"acked": 0}

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
                counts["acked"] += len(batch)

        stop = threading.Event()

        def monitor() -> None:
            started, last = time.monotonic(), proc_cpu(broker.pid)
            while not stop.wait(2.0):
                now = proc_cpu(broker.pid)
                print(
                    f"  {time.monotonic() - started:5.0f} s: broker {(now - last) / 2:.2f} cores, "
                    f"acked {counts['acked']:,}, in flight {tap.in_flight:,} "
                    f"(max {tap.interval_max():,}), ids reused {tap.reused:,}, "
                    f"PUBACKs for unknown ids {tap.unknown_acks:,}",
                    flush=True,
                )
                last = now

        link.start(inbox.put)
        threading.Thread(target=consumer, daemon=True).start()
        threading.Thread(target=monitor, daemon=True).start()
        time.sleep(1.0)
        started, cpu0 = time.monotonic(), proc_cpu(broker.pid)
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
        drained = time.monotonic()
        cpu = proc_cpu(broker.pid)
        time.sleep(IDLE_S)
        idle = (proc_cpu(broker.pid) - cpu) / IDLE_S
        first = tap.first_reuse
        print(
            f"backlog consumed {drained - started:.1f} s after the burst began; broker "
            f"{cpu - cpu0:.1f} core-s for it, then {idle:.2f} cores idle "
            f"for {IDLE_S:g} s\n"
            f"  in flight max {tap.max_in_flight:,} (Receive Maximum "
            f"{mqtt_link.RECEIVE_MAXIMUM:,}; first above it at "
            + (f"{tap.first_over - (started - tap.started):.1f} s" if tap.first_over else "never")
            + f"), left in flight {tap.in_flight:,}\n"
            f"  PUBLISHes {tap.publishes:,} (DUP {tap.dups:,}); with an id still in flight "
            f"{tap.reused:,}"
            + (
                f", first at {first[0] - (started - tap.started):.1f} s with {first[1]:,} in flight"
                if first
                else ""
            )
            + f"\n  PUBACKs {tap.pubacks:,}, for an id with no entry {tap.unknown_acks:,}"
        )
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
