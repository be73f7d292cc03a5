"""Remote diagnostic sessions: an operator's UDS readout of one vehicle, over MQTT.

An operator asks for reads (DTCs, VIN, software versions, odometer) of some ECUs; the
service stores the session and one request per (ECU, read), then sends each as a
`diag/request` (ISO 14229 bytes encoded by `autocloud.domain.uds`). The vehicle's answers
arrive through ingest, which stores them in its transaction; an after-commit listener
wakes this service's worker thread, which closes the session once every request has its
answer, or at its expiry with the missing ones reported as ``no_response``. The report is
stored with the session (JSON) and announced on the live stream as a ``diag`` change.

Clearing DTCs erases the evidence a workshop needs (freeze frames, the MIL history), so it
happens only on explicit request and needs the admin role; reading needs operator.
"""

import logging
import secrets
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

from autocloud.domain import diag_session, uds
from autocloud.domain.access import Principal, Role
from autocloud.domain.clock import Clock
from autocloud.domain.diag_session import DiagRequestRow, DiagSession
from autocloud.domain.errors import InvalidInput, NotFound
from autocloud.domain.protocol import CloudTopic, DiagResponse
from autocloud.domain.records import Page
from autocloud.ports.diag_sessions import DiagSessionStore
from autocloud.services.fanout import Change, Hub
from autocloud.services.ingest.stages import Batch
from autocloud.services.registry import RegistryService
from autocloud.services.telemetry import TelemetryService

log = logging.getLogger(__name__)

POWERTRAIN = "Vehicle.Powertrain.Type"
SESSION_ID_BYTES = 8
POLL_S = 1.0  # the worker looks at expiries at least this often
Send = Callable[[str, str, bytes], None]


def session_of(request_id: str) -> str:
    """The session id inside a request id (`<session>.<n>`)."""
    return request_id.split(".", 1)[0]


class DiagnosticSessions:
    """Request readouts, collect answers, time out silence, keep reports."""

    def __init__(
        self,
        store: DiagSessionStore,
        registry: RegistryService,
        telemetry: TelemetryService,
        send: Send,
        hub: Hub,
        clock: Clock,
        *,
        timeout_s: float,
    ) -> None:
        self._store = store
        self._registry = registry
        self._telemetry = telemetry
        self._send = send
        self._hub = hub
        self._clock = clock
        self._timeout_ms = int(timeout_s * 1000)
        self._lock = threading.Lock()
        self._due: dict[str, int] = {}  # pending session id -> expires_ms
        self._dirty: set[str] = set()  # sessions that got answers since the worker looked
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- operator side --------------------------------------------------------------------
    def request(
        self,
        who: Principal,
        vin: str,
        *,
        ecus: Sequence[str] = (),
        reads: Sequence[str] | None = None,
        clear_dtcs: bool = False,
    ) -> DiagSession:
        """Send a readout (and, on request, a DTC clear) to the vehicle; the pending session."""
        who.require(Role.OPERATOR)
        if clear_dtcs:
            who.require(Role.ADMIN)
        vehicle = self._registry.vehicle(who, vin)
        names = _unique(uds.ecu(n).name for n in ecus) or uds.default_ecus(
            self._powertrain(who, vehicle.vin)
        )
        wanted = list(uds.READOUT) if reads is None else _unique(uds.read(r).name for r in reads)
        if not wanted and not clear_dtcs:
            raise InvalidInput("nothing to do: ask for at least one read or clear_dtcs")
        now = self._clock.now_ms()
        session = DiagSession(
            id="ds" + secrets.token_hex(SESSION_ID_BYTES),
            vehicle_id=vehicle.id,
            vin=vehicle.vin,
            brand=vehicle.brand,
            requested_by=who.name,
            created_ms=now,
            expires_ms=now + self._timeout_ms,
            status="pending",
            ecus=tuple(names),
            reads=tuple(wanted),
            clear_dtcs=clear_dtcs,
        )
        steps = [*wanted, uds.CLEAR] if clear_dtcs else wanted  # read the codes, then clear
        rows = [
            DiagRequestRow(f"{session.id}.{i}", i, name, step, uds.READS[step].request().hex())
            for i, (name, step) in enumerate((n, s) for n in names for s in steps)
        ]
        self._store.add(session, rows)
        try:
            for row in rows:
                message = uds.DiagRequest(
                    id=row.id,
                    ecu=row.ecu,
                    addr=uds.ECUS[row.ecu].address,
                    request=row.request,
                    issued=now,
                    expires=session.expires_ms,
                )
                self._send(vehicle.vin, CloudTopic.DIAG_REQUEST.value, uds.encode_request(message))
        except Exception as exc:
            self._store.finish(session.id, "failed", now, None, f"sending failed: {exc}")
            raise
        with self._lock:
            self._due[session.id] = session.expires_ms
        return session

    def _powertrain(self, who: Principal, vin: str) -> str | None:
        for signal in self._telemetry.twin(who, vin).reported:
            if signal.path == POWERTRAIN and isinstance(signal.value, str):
                return signal.value
        return None

    def session(self, who: Principal, vin: str, session_id: str) -> DiagSession:
        vehicle = self._registry.vehicle(who, vin)
        found = self._store.get(session_id)
        if found is None or found.vehicle_id != vehicle.id:
            raise NotFound(f"diagnostic session {session_id!r} not found")
        return found

    def sessions(self, who: Principal, vin: str, *, cursor: str | None, limit: int) -> Page:
        vehicle = self._registry.vehicle(who, vin)
        found = self._store.page(vehicle.id, before=cursor, limit=limit)
        more = len(found) == limit
        return Page(tuple(found), found[-1].id if more and found else None)

    # --- vehicle side ----------------------------------------------------------------------
    def on_commit(self, batch: Batch) -> None:
        """After-commit listener: note the sessions that got answers and wake the worker."""
        touched = {
            session_of(r.message.id)
            for r in batch.out.replies
            if isinstance(r.message, DiagResponse)
        }
        with self._lock:
            touched &= self._due.keys()
            self._dirty |= touched
        if touched:
            self._wake.set()

    def settle(self, session_id: str, *, expired: bool = False) -> DiagSession | None:
        """Close the session if every request is answered (or it `expired`); the result."""
        session = self._store.get(session_id)
        if session is None or session.status != "pending":
            self._forget(session_id)
            return session
        requests = self._store.requests(session_id)
        answers = self._store.answers(session.vehicle_id, [r.id for r in requests])
        report = diag_session.build(session.vin, requests, answers)
        if not report["complete"] and not expired:
            return session
        status = "complete" if report["complete"] else "incomplete"
        now = self._clock.now_ms()
        if self._store.finish(session_id, status, now, report):
            summary = report["summary"]
            self._hub.publish(
                [
                    Change(
                        "diag",
                        session.vin,
                        session.brand,
                        {"id": session_id, "status": status, "summary": summary},
                    )
                ]
            )
        self._forget(session_id)
        return replace(session, status=status, completed_ms=now, report=report)

    def sweep(self) -> None:
        """Settle the sessions with new answers and expire the overdue ones."""
        now = self._clock.now_ms()
        with self._lock:
            dirty, self._dirty = self._dirty, set()
            overdue = [sid for sid, expires in self._due.items() if expires <= now]
        for session_id in dirty - set(overdue):
            self.settle(session_id)
        for session_id in overdue:
            self.settle(session_id, expired=True)

    def _forget(self, session_id: str) -> None:
        with self._lock:
            self._due.pop(session_id, None)
            self._dirty.discard(session_id)

    # --- worker -----------------------------------------------------------------------------
    def start(self) -> None:
        """Take over the pending sessions in the store (after a restart) and run the worker."""
        with self._lock:
            self._due.update(self._store.pending())
        self._thread = threading.Thread(target=self._run, name="diag-sessions", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(POLL_S)
            self._wake.clear()
            try:
                self.sweep()
            except Exception:  # the store is down: keep the sessions, try again
                log.exception("diagnostic sessions: sweep failed; retrying")


def _unique(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(names))
