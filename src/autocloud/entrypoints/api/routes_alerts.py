"""Alert rules (CRUD) and alerts (list, acknowledge); docs/diagnostics.md has examples."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, Field

from autocloud.bootstrap import Platform
from autocloud.domain.alerts import Alert, AlertRule, condition_spec
from autocloud.entrypoints.api.deps import Plat, Who
from autocloud.entrypoints.api.schemas import PageOut
from autocloud.services.alerts import AlertService

router = APIRouter(prefix="/v1")
LimitQ = Annotated[int, Query(ge=1, le=1000)]

_SIGNAL_EXAMPLE = {
    "path": "Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature",
    "op": ">",
    "threshold": 110,
    "hysteresis": 5,
    "for_s": 60,
}


def _service(p: Platform) -> AlertService:
    assert p.alerts is not None, "bootstrap wires the alert service"
    return p.alerts


class AlertRuleIn(BaseModel):
    """A rule: exactly one of `signal` or `event`."""

    name: str = Field(examples=["coolant hot"])
    brand: str | None = Field(None, description="The tenant; a brand token's own by default.")
    severity: Literal["info", "warning", "critical"] = "warning"
    signal: dict[str, Any] | None = Field(
        None,
        description="path (`*` = one segment), op (< <= > >= == !=), threshold, hysteresis, "
        "for_s (seconds the condition must hold), while: {path, op, value} (a guard).",
        examples=[_SIGNAL_EXAMPLE],
    )
    event: dict[str, Any] | None = Field(
        None,
        description="type; for dtc.raised: severity (minimum) and codes (prefixes); for other "
        "types: clear_type (the event that resolves the alert).",
        examples=[{"type": "dtc.raised", "severity": "critical"}],
    )

    def condition(self) -> dict[str, Any]:
        return {"signal": self.signal, "event": self.event}


class AlertRuleOut(BaseModel):
    id: int
    brand: str
    name: str
    severity: str
    signal: dict[str, Any] | None = None
    event: dict[str, Any] | None = None
    created_ms: int
    created_by: str

    @classmethod
    def of(cls, r: AlertRule) -> "AlertRuleOut":
        return cls(
            id=r.id,
            brand=r.brand,
            name=r.name,
            severity=r.severity.label,
            created_ms=r.created_ms,
            created_by=r.created_by,
            **condition_spec(r.condition),
        )


class AlertOut(BaseModel):
    id: int
    rule_id: int
    rule: str
    brand: str
    vin: str
    severity: str
    state: str = Field(examples=["open"])
    key: str = Field(description="The signal path that fired; empty for event rules.")
    value: Any = Field(description="What fired it: a value, the matching DTCs, event data.")
    detail: str
    opened_ts: int = Field(description="Vehicle time the alert opened.")
    opened_ms: int
    acked_ms: int | None
    acked_by: str | None
    resolved_ts: int | None
    resolved_ms: int | None
    resolved_reason: str | None

    @classmethod
    def of(cls, a: Alert) -> "AlertOut":
        return cls(
            id=a.id,
            rule_id=a.rule_id,
            rule=a.rule_name,
            brand=a.brand,
            vin=a.vin,
            severity=a.severity,
            state=a.state.value,
            key=a.key,
            value=a.value,
            detail=a.detail,
            opened_ts=a.opened_ts,
            opened_ms=a.opened_ms,
            acked_ms=a.acked_ms,
            acked_by=a.acked_by,
            resolved_ts=a.resolved_ts,
            resolved_ms=a.resolved_ms,
            resolved_reason=a.resolved_reason,
        )


@router.post("/alert-rules", status_code=status.HTTP_201_CREATED, tags=["alerts"])
def create_rule(body: AlertRuleIn, who: Who, p: Plat) -> AlertRuleOut:
    """Define an alert rule for a brand's vehicles; it applies to the next messages."""
    rule = _service(p).create_rule(
        who, brand=body.brand, name=body.name, severity=body.severity, condition=body.condition()
    )
    return AlertRuleOut.of(rule)


@router.get("/alert-rules", tags=["alerts"])
def list_rules(
    who: Who, p: Plat, brand: str | None = None, cursor: str | None = None, limit: LimitQ = 100
) -> PageOut[AlertRuleOut]:
    page = _service(p).rules(who, brand=brand, cursor=cursor, limit=limit)
    return PageOut(items=[AlertRuleOut.of(r) for r in page.items], next=page.next)


@router.get("/alert-rules/{rule_id}", tags=["alerts"])
def get_rule(rule_id: int, who: Who, p: Plat) -> AlertRuleOut:
    return AlertRuleOut.of(_service(p).rule(who, rule_id))


@router.put("/alert-rules/{rule_id}", tags=["alerts"])
def replace_rule(rule_id: int, body: AlertRuleIn, who: Who, p: Plat) -> AlertRuleOut:
    """Change a rule; alerts it has open are resolved ("rule changed")."""
    rule = _service(p).replace_rule(
        who,
        rule_id,
        brand=body.brand,
        name=body.name,
        severity=body.severity,
        condition=body.condition(),
    )
    return AlertRuleOut.of(rule)


@router.delete("/alert-rules/{rule_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["alerts"])
def delete_rule(rule_id: int, who: Who, p: Plat) -> Response:
    """Delete a rule; alerts it has open are resolved ("rule deleted"), history stays."""
    _service(p).delete_rule(who, rule_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/alerts", tags=["alerts"])
def list_alerts(
    who: Who,
    p: Plat,
    state: Literal["open", "acknowledged", "resolved"] | None = None,
    vin: str | None = None,
    rule_id: int | None = None,
    brand: str | None = None,
    cursor: str | None = None,
    limit: LimitQ = 100,
) -> PageOut[AlertOut]:
    """Alerts, newest first."""
    page = _service(p).alerts(
        who, state=state, vin=vin, rule_id=rule_id, brand=brand, cursor=cursor, limit=limit
    )
    return PageOut(items=[AlertOut.of(a) for a in page.items], next=page.next)


@router.get("/alerts/{alert_id}", tags=["alerts"])
def get_alert(alert_id: int, who: Who, p: Plat) -> AlertOut:
    return AlertOut.of(_service(p).alert(who, alert_id))


@router.post("/alerts/{alert_id}/ack", tags=["alerts"])
def acknowledge(alert_id: int, who: Who, p: Plat) -> AlertOut:
    """Acknowledge an open alert (who and when are recorded); 409 if it is not open."""
    return AlertOut.of(_service(p).acknowledge(who, alert_id))
