"""Alert rules and alerts for the API and the CLI, within a tenant.

Rules are created, replaced and deleted here (validated by
:func:`autocloud.domain.alerts.parse_condition` against the signal catalog); each change
tells the ingest stage (:class:`~autocloud.services.alert_stage.AlertStage`) to reload. A
change or delete resolves the rule's open alerts, since they were raised under conditions
that no longer hold. Alerts are listed and acknowledged here; evaluation is in the stage.

An owner's token sees the alerts of the owner's vehicles only (`Principal.vin_filter`, in the
query, so pages stay full) and may acknowledge them; another vehicle's alert is not found,
exactly as one that does not exist. Rules are the brand's: owners are refused them.
"""

from collections.abc import Mapping
from typing import Any

from autocloud.domain.access import OWNER_HINTS, Principal, Role
from autocloud.domain.alerts import (
    Alert,
    AlertRule,
    AlertState,
    EventCondition,
    parse_condition,
)
from autocloud.domain.catalog import Catalog
from autocloud.domain.clock import Clock
from autocloud.domain.dtc import Severity
from autocloud.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from autocloud.domain.records import Page
from autocloud.ports.diagnostics import AlertStore
from autocloud.services.alert_stage import AlertStage
from autocloud.services.fanout import Change, Hub
from autocloud.services.registry import RegistryService, cursor_of, parse_cursor

MAX_NAME = 200
MAX_ROW = 2**31 - 1  # ids are SQL INTEGER: a larger one cannot exist (nor be bound)


def _name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise InvalidInput(f"a rule name is 1 to {MAX_NAME} characters")
    return name


def _no_owner(who: Principal) -> None:
    """Rules are brand-level: an owner's token is refused them (the API's route check says
    so first; this keeps the rule for any other entry point)."""
    if who.owner_id is not None:
        raise Forbidden(
            f"an owner's token may not use alert rules; {OWNER_HINTS['/v1/alert-rules']}"
        )


def _visible(who: Principal, alert: Alert | None) -> bool:
    """Inside the caller's brand, and for an owner's token one of the owner's vehicles."""
    if alert is None or not who.sees(alert.brand):
        return False
    return who.vin_filter is None or alert.vin in who.vin_filter


def one_shot(rule: AlertRule | None) -> bool:
    """An event rule with nothing that clears it: acknowledging its alert resolves it."""
    c = rule.condition if rule is not None else None
    return isinstance(c, EventCondition) and not c.is_dtc and c.clear_type is None


class AlertService:
    def __init__(
        self,
        store: AlertStore,
        stage: AlertStage,
        registry: RegistryService,
        catalog: Catalog,
        hub: Hub,
        clock: Clock,
    ) -> None:
        self._store = store
        self.stage = stage
        self._registry = registry
        self._catalog = catalog
        self._hub = hub
        self._clock = clock

    # --- rules ---------------------------------------------------------------------------
    def _brand(self, who: Principal, brand: str | None) -> str:
        chosen = brand or who.brand
        if chosen is None:
            raise InvalidInput("a group token must name the rule's brand")
        who.check_brand(chosen, f"brand {chosen!r}")
        if not self._registry.brands(who, chosen):
            raise NotFound(f"brand {chosen!r} not found")
        return chosen

    def create_rule(
        self,
        who: Principal,
        *,
        brand: str | None,
        name: str,
        severity: str,
        condition: Mapping[str, Any],
    ) -> AlertRule:
        _no_owner(who)
        who.require(Role.OPERATOR)
        owner = self._brand(who, brand)
        parsed = parse_condition(condition, self._catalog)
        rule = self._store.add_rule(
            owner, _name(name), Severity.parse(severity), parsed, self._clock.now_ms(), who.name
        )
        self.stage.reload()
        return rule

    def rule(self, who: Principal, rule_id: int) -> AlertRule:
        _no_owner(who)
        found = self._store.rule(rule_id) if 0 < rule_id <= MAX_ROW else None
        if found is None or not who.sees(found.brand):
            raise NotFound(f"alert rule {rule_id} not found")
        return found

    def replace_rule(
        self,
        who: Principal,
        rule_id: int,
        *,
        brand: str | None,
        name: str,
        severity: str,
        condition: Mapping[str, Any],
    ) -> AlertRule:
        _no_owner(who)
        who.require(Role.OPERATOR)
        current = self.rule(who, rule_id)
        if brand is not None and brand != current.brand:
            raise InvalidInput("a rule stays with its brand; create a new rule for another")
        parsed = parse_condition(condition, self._catalog)
        rule = self._store.replace_rule(
            rule_id, _name(name), Severity.parse(severity), parsed, self._clock.now_ms()
        )
        self.stage.forget(rule_id)
        self.stage.reload()
        return rule

    def delete_rule(self, who: Principal, rule_id: int) -> None:
        _no_owner(who)
        who.require(Role.OPERATOR)
        self.rule(who, rule_id)
        self._store.delete_rule(rule_id, self._clock.now_ms())
        self.stage.forget(rule_id)
        self.stage.reload()

    def rules(self, who: Principal, *, brand: str | None, cursor: str | None, limit: int) -> Page:
        _no_owner(who)
        items = self._store.rules(who.scope(brand), after=parse_cursor(cursor), limit=limit)
        return Page(tuple(items), cursor_of(items[-1].id if len(items) == limit else None))

    # --- alerts --------------------------------------------------------------------------
    def alert(self, who: Principal, alert_id: int) -> Alert:
        found = self._store.alert(alert_id) if 0 < alert_id <= MAX_ROW else None
        if found is None or not _visible(who, found):
            raise NotFound(f"alert {alert_id} not found")
        return found

    def alerts(
        self,
        who: Principal,
        *,
        state: str | None,
        vin: str | None,
        rule_id: int | None,
        brand: str | None,
        cursor: str | None,
        limit: int,
    ) -> Page:
        scope = who.scope(brand)
        try:
            wanted = AlertState(state) if state else None
        except ValueError:
            allowed = ", ".join(s.value for s in AlertState)
            raise InvalidInput(f"state {state!r} is not one of {allowed}") from None
        vehicle_id = self._registry.vehicle(who, vin).id if vin else None
        if rule_id is not None and not 0 < rule_id <= MAX_ROW:
            return Page((), None)  # no rule has such an id
        items = self._store.alerts(
            scope,
            state=wanted,
            vehicle_id=vehicle_id,
            rule_id=rule_id,
            after=parse_cursor(cursor),
            limit=limit,
            vins=who.vin_filter,
        )
        return Page(tuple(items), cursor_of(items[-1].id if len(items) == limit else None))

    def acknowledge(self, who: Principal, alert_id: int) -> Alert:
        """Acknowledge an open alert (who and when are recorded).

        It stays acknowledged until its condition clears; an event alert that nothing clears
        (no ``clear_type``) is resolved by the acknowledgement instead. An operator of the
        brand may acknowledge any of its alerts; an owner's token those of the owner's
        vehicles (another's is not found).
        """
        if who.owner_id is None:
            who.require(Role.OPERATOR)
        current = self.alert(who, alert_id)
        if current.state is not AlertState.OPEN:
            raise Conflict(f"alert {alert_id} is {current.state}; only an open one is acknowledged")
        resolve = one_shot(self._store.rule(current.rule_id))
        done = self._store.acknowledge(alert_id, who.name, self._clock.now_ms(), resolve=resolve)
        if done is None:
            raise Conflict(f"alert {alert_id} changed meanwhile; it is no longer open")
        if resolve:
            self.stage.forget(done.rule_id, done.vehicle_id)
        self._hub.publish(
            [
                Change(
                    "alert",
                    done.vin,
                    done.brand,
                    {
                        "id": done.id,
                        "state": done.state.value,
                        "rule_id": done.rule_id,
                        "acked_by": done.acked_by,
                        "acked_ms": done.acked_ms,
                    },
                )
            ]
        )
        return done


__all__ = ["AlertService", "one_shot"]
