"""Ports of diagnostics and alerts: active DTCs and their history, alert rules and alerts.

Adapters: `adapters/sql/diagnostics.py` and `adapters/sql/alerts.py` (SQLite and PostgreSQL);
contract tests in `tests/contract/test_diagnostics_contract.py`. What ingest writes (DTC
updates, alert transitions) goes through `WriteBatch.extra` writers, not through these.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from autocloud.domain.alerts import Alert, AlertRule, AlertState, Condition, PendingWait
from autocloud.domain.dtc import Severity
from autocloud.domain.dtc_active import ActiveDtc, DtcTransition


@dataclass(frozen=True, slots=True)
class FleetDtc:
    """One active code of one vehicle, for the fleet health summary."""

    vin: str
    brand: str
    model: str
    code: str
    since_ms: int


class DtcStore(Protocol):
    def active_dtcs(self, vehicle_ids: Iterable[int]) -> dict[int, list[ActiveDtc]]: ...
    def dtc_history(self, vehicle_id: int, limit: int) -> list[DtcTransition]: ...
    def fleet_dtcs(self, scope: str | None) -> list[FleetDtc]: ...


class AlertStore(Protocol):
    def add_rule(
        self,
        brand: str,
        name: str,
        severity: Severity,
        condition: Condition,
        now_ms: int,
        by: str,
    ) -> AlertRule: ...
    def replace_rule(
        self, rule_id: int, name: str, severity: Severity, condition: Condition, now_ms: int
    ) -> AlertRule:
        """Change a rule; its open alerts resolve ("rule changed")."""

    def delete_rule(self, rule_id: int, now_ms: int) -> None:
        """Remove a rule; its open alerts resolve ("rule deleted")."""

    def rule(self, rule_id: int) -> AlertRule | None: ...
    def rules(self, scope: str | None, *, after: int, limit: int) -> list[AlertRule]: ...
    def all_rules(self) -> list[AlertRule]: ...
    def pending_waits(self) -> list[PendingWait]:
        """Every wait under way (a `for_s` condition holding, not yet long enough)."""

    def open_alert_keys(self) -> list[tuple[int, int, str]]:
        """(rule, vehicle, key) of every open or acknowledged alert."""

    def alert(self, alert_id: int) -> Alert | None: ...
    def alerts(
        self,
        scope: str | None,
        *,
        state: AlertState | None,
        vehicle_id: int | None,
        rule_id: int | None,
        after: int,
        limit: int,
        vins: frozenset[str] | None = None,
    ) -> list[Alert]:
        """Newest first; `vins` (an owner's token) keeps only those vehicles' alerts."""

    def acknowledge(self, alert_id: int, by: str, now_ms: int, *, resolve: bool) -> Alert | None:
        """Acknowledge an open alert (and resolve it when `resolve`); None if not open."""

    def twin_values(
        self, vehicle_ids: Iterable[int], paths: Iterable[str]
    ) -> Mapping[int, Mapping[str, tuple[int, Any]]]:
        """Latest (ts, value) of `paths` per vehicle, from the twin (seeds `while` guards)."""


__all__ = ["AlertStore", "DtcStore", "FleetDtc"]
