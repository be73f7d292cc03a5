"""Count messages through the platform's own MQTT link (`MqttLink`), doing nothing else.

Run as `python -m bench.link_sink HOST PORT USER PASSWORD COUNT TIMEOUT_S`; it prints
`received last_arrival_epoch_s cpu_s` (cpu_s: this process's CPU time, all threads). This is
the ceiling of the platform's single consumer connection: `MqttLink`'s reader thread
(`adapters/mqtt_link.py` over `adapters/mqtt_wire.py`), MQTT 5 shared subscription, manual
QoS 1 acks (one PUBACK per message, at once), and no ingest work at all. The bench compares
the platform's throughput with it. (Until 2026-11-22 this was `bench/paho_sink.py`, when
`MqttLink` was built on paho.)
"""

from __future__ import annotations

import sys
import threading
import time

from autocloud.adapters.mqtt_link import MqttLink
from autocloud.ports.link import Inbound


def main(argv: list[str]) -> None:
    host, port, user, password, count, timeout = argv
    wanted = int(count)
    received = 0
    last = 0.0
    done = threading.Event()
    link = MqttLink(
        host, int(port), username=user, password=password, client_id=f"bench-sink-{user}"
    )

    def sink(message: Inbound) -> None:
        nonlocal received, last
        link.ack([message])
        received += 1
        if received >= wanted:
            last = time.time()
            done.set()

    link.start(sink)
    done.wait(float(timeout))
    if not done.is_set():
        last = time.time()
    link.stop()
    print(received, f"{last:.6f}", f"{time.process_time():.3f}")


if __name__ == "__main__":
    main(sys.argv[1:])
