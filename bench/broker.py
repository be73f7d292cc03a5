"""A private Mosquitto (dynamic security) for one benchmark, its bench clients, and the raw
broker baseline that the platform's throughput is compared with.

The broker is configured exactly as the platform's single-node tier configures it
(`write_mosquitto_config`), on a free loopback port, in a scratch directory.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from autocloud.adapters.mosquitto import write_mosquitto_config
from bench.fleet import Gateway, collect, payload, run_publishers, sid_of, vin_of

START_TIMEOUT_S = 10.0
GATEWAY_USER = "bench-fleet-gateway"
RAW_USER = "bench-raw"
RAW_TOPIC = "bench/raw"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on `host` a moment ago."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def mosquitto_binary() -> str:
    """The broker binary; /usr/sbin is often off PATH."""
    for candidate in (
        shutil.which("mosquitto"),
        "/usr/sbin/mosquitto",
        "/usr/local/sbin/mosquitto",
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise SystemExit("mosquitto not found: apt-get install mosquitto mosquitto-clients")


@dataclass(frozen=True, slots=True)
class Broker:
    """A running private broker."""

    host: str
    port: int
    admin_user: str
    admin_password: str
    directory: Path
    pid: int

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def ctrl(self, *args: str) -> None:
        """Run one `mosquitto_ctrl dynsec` command as the dynsec admin; fail loudly."""
        command = [
            "mosquitto_ctrl",
            "-h",
            self.host,
            "-p",
            str(self.port),
            "-u",
            self.admin_user,
            "-P",
            self.admin_password,
            "dynsec",
            *args,
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
        if done.returncode != 0 or "rror" in done.stdout:
            raise RuntimeError(f"mosquitto_ctrl {' '.join(args[:2])}: {done.stdout}{done.stderr}")

    def add_client(self, username: str, acls: list[tuple[str, str]]) -> str:
        """Create a dynsec client with a role of its own holding `acls`; return its password."""
        password = secrets.token_urlsafe(16)
        self.ctrl("createRole", username)
        for acltype, topic in acls:
            self.ctrl("addRoleACL", username, acltype, topic, "allow")
        self.ctrl("createClient", username, "-p", password)
        self.ctrl("addClientRole", username, username)
        return password

    def add_gateway(self) -> Gateway:
        """The fleet gateway: may publish telemetry for any VIN (and nothing else)."""
        password = self.add_client(GATEWAY_USER, [("publishClientSend", "vehicles/+/telemetry")])
        return Gateway(self.host, self.port, GATEWAY_USER, password)

    def rss_kb(self) -> int | None:
        return rss_kb(self.pid)


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a running process (0.0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kb(pid: int, field: str = "VmRSS") -> int | None:
    """A memory figure (kB) from /proc/<pid>/status, or None if the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


@contextmanager
def running_broker(directory: Path) -> Iterator[Broker]:
    """Start a private Mosquitto with dynsec on a free loopback port; stop it at exit."""
    host, port = "127.0.0.1", free_port()
    admin_user, admin_password = "bench-admin", secrets.token_urlsafe(16)
    config = write_mosquitto_config(
        directory, port=port, admin_user=admin_user, admin_password=admin_password, host=host
    )
    with (directory / "stderr.log").open("wb") as stderr:
        process = subprocess.Popen(
            [mosquitto_binary(), "-c", str(config)], stdout=subprocess.DEVNULL, stderr=stderr
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {process.returncode}; see {directory}")
            with suppress(OSError), socket.create_connection((host, port), timeout=0.2):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto did not listen on {host}:{port}")
            time.sleep(0.05)
        yield Broker(host, port, admin_user, admin_password, directory, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


# -- raw baseline ------------------------------------------------------------------------------

RAW_PUBLISHERS = ("lean", "paho", "mosquitto_pub")
RAW_SUBSCRIBERS = ("mosquitto_sub", "link")


@dataclass(frozen=True, slots=True)
class RawResult:
    """One raw broker run: `messages` QoS 1 messages from publisher(s) to one subscriber.

    `publisher` is the client the publishers ran (`lean`, `paho`: the bench's fleet publisher
    processes; `mosquitto_pub -l`). `publisher_cpu_s` is their CPU while sending (lean, paho)
    or their whole CPU (mosquitto_pub, read just before they were told to stop);
    `subscriber_cpu_s` is the link sink's own CPU (None for mosquitto_sub)."""

    subscriber: str
    publishers: int
    messages: int
    received: int
    payload_bytes: int
    seconds: float
    publisher: str = "mosquitto_pub"
    publisher_cpu_s: float | None = None
    broker_cpu_s: float | None = None
    subscriber_cpu_s: float | None = None

    @property
    def msg_per_s(self) -> float:
        return self.received / self.seconds if self.seconds > 0 else 0.0

    def us_per_msg(self, cpu_s: float | None) -> float | None:
        """CPU microseconds per message sent, of one party."""
        return None if cpu_s is None or not self.messages else 1e6 * cpu_s / self.messages


def write_payload_lines(path: Path, messages: int, signals: int, vins: int) -> int:
    """Telemetry payloads of the benchmark, one per line (`mosquitto_pub -l`); mean size."""
    now = time.time_ns() // 1_000_000
    total = 0
    with path.open("wb") as out:
        for n in range(messages):
            vin_index = n % vins
            line = payload(vin_index, sid_of(vin_index), n // vins, now + n // vins, signals)
            total += len(line)
            out.write(line + b"\n")
    return total // max(1, messages)


def raw_baseline(
    broker: Broker,
    lines: Path | None,
    messages: int,
    payload_bytes: int,
    *,
    publishers: int,
    subscriber: str,
    timeout_s: float,
    publisher: str = "mosquitto_pub",
    signals: int = 20,
    vins: int = 10_000,
    tag: str = "",
) -> RawResult:
    """Time `publishers` publishers x `messages` QoS 1 messages into the broker while one QoS 1
    subscriber counts every message.

    Publishers: `lean` or `paho` run the bench's fleet publisher processes (`bench/fleet.py`,
    the same code, payloads and topics `vehicles/{VIN}/telemetry` over `vins` VINs as the
    ingest phases); `mosquitto_pub` runs `mosquitto_pub -l -q 1 -M 1000` fed `lines` (one
    topic). The subscriber is `mosquitto_sub` (C: what the broker alone carries) or `link`
    (the platform's own `MqttLink`, acking each message at once: the ceiling of the
    platform's consumer connection, see `bench/link_sink.py`).

    The clock runs from the first publish until the subscriber has received them all.
    """
    if publisher not in RAW_PUBLISHERS or subscriber not in RAW_SUBSCRIBERS:
        raise ValueError(f"unknown raw baseline {publisher} -> {subscriber}")
    user = f"{RAW_USER}-{subscriber}-{publisher}-{publishers}{tag}"
    password = broker.add_client(
        user,
        [
            ("publishClientSend", "bench/#"),
            ("subscribePattern", "bench/#"),
            ("publishClientReceive", "bench/#"),
            ("publishClientSend", "vehicles/#"),
            ("subscribePattern", "vehicles/#"),
            ("subscribePattern", "$share/+/vehicles/#"),
            ("publishClientReceive", "vehicles/#"),
        ],
    )
    total = messages * publishers
    auth = ["-h", broker.host, "-p", str(broker.port), "-u", user, "-P", password]
    repo = Path(__file__).resolve().parent.parent
    rounds = max(1, total // vins)  # lean, paho: whole rounds over the VINs
    if publisher == "mosquitto_pub":
        topic = RAW_TOPIC if subscriber == "mosquitto_sub" else f"vehicles/{vin_of(0)}/telemetry"
    else:
        topic = "vehicles/+/telemetry"
        total = rounds * vins
    if subscriber == "mosquitto_sub":
        sub_cmd = [
            "mosquitto_sub",
            *auth,
            "-q",
            "1",
            "-t",
            topic,
            "-C",
            str(total),
            "-W",
            str(int(timeout_s)),
            "-N",
            "-F",
            ".",
        ]
    else:
        sub_cmd = [
            sys.executable,
            "-m",
            "bench.link_sink",
            broker.host,
            str(broker.port),
            user,
            password,
            str(total),
            str(timeout_s),
        ]
    broker_cpu = proc_cpu(broker.pid)
    sub = subprocess.Popen(sub_cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=repo)
    time.sleep(1.5)  # let it connect and subscribe (QoS 1 without a session misses earlier ones)
    if publisher == "mosquitto_pub":
        assert lines is not None, "mosquitto_pub needs the payload lines"
        first, done_wall, pub_cpu, out = _run_mosquitto_pub(
            lines, auth, topic, publishers, sub, timeout_s
        )
    else:
        gateway = Gateway(broker.host, broker.port, user, password)
        processes, _ = run_publishers(
            gateway,
            range(vins),
            publishers,
            rounds=rounds,
            seq_start=1,
            signals=signals,
            tag=f"raw-{publisher}",
            client=publisher,
        )
        out, _ = sub.communicate(timeout=timeout_s + 15)
        done_wall = time.time()
        sent = collect(processes)
        first = min(r.first_send for r in sent)
        pub_cpu = sum(r.send_cpu_s for r in sent)
    if subscriber == "mosquitto_sub":
        end, sub_cpu, received = done_wall, None, len(out)
    else:
        count, last, cpu = out.split()
        received, end, sub_cpu = int(count), float(last), float(cpu)
    return RawResult(
        subscriber,
        publishers,
        total,
        received,
        payload_bytes,
        end - first,
        publisher,
        round(pub_cpu, 3),
        round(proc_cpu(broker.pid) - broker_cpu, 3),
        sub_cpu,
    )


def _run_mosquitto_pub(
    lines: Path,
    auth: list[str],
    topic: str,
    publishers: int,
    sub: subprocess.Popen[bytes],
    timeout_s: float,
) -> tuple[float, float, float, bytes]:
    """`publishers` x `mosquitto_pub -l` until `sub` exits: start and end time, their CPU,
    the subscriber's output."""
    started = time.time()
    # stdin stays open until the subscriber has everything: at EOF mosquitto_pub 2.0.11
    # disconnects with most of its queue unsent (a file on stdin delivered ~1/3 here).
    pubs = [
        subprocess.Popen(
            ["mosquitto_pub", *auth, "-q", "1", "-t", topic, "-l", "-M", "1000"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(publishers)
    ]
    feeders = [threading.Thread(target=_feed, args=(lines, pub), daemon=True) for pub in pubs]
    for feeder in feeders:
        feeder.start()
    out, _ = sub.communicate(timeout=timeout_s + 15)
    done = time.time()
    cpu = sum(proc_cpu(pub.pid) for pub in pubs)
    for pub in pubs:
        with suppress(OSError):
            assert pub.stdin is not None
            pub.stdin.close()
        pub.wait(timeout=30)
    return started, done, cpu, out


def _feed(lines: Path, pub: subprocess.Popen[bytes]) -> None:
    """Copy the payload lines into a publisher's stdin without closing it."""
    assert pub.stdin is not None
    with suppress(OSError, ValueError), lines.open("rb") as source:
        shutil.copyfileobj(source, pub.stdin)
        pub.stdin.flush()
