"""Patrol routes. Every scope is resolved against the user's own first (404 outside it)."""

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status
from fastapi.responses import HTMLResponse, Response

from api.alerts import service
from api.alerts.models import (
    AlertState,
    AlertSummary,
    MaintenanceIn,
    OrderStatus,
    RuleUpdate,
    Severity,
    SilenceIn,
    WorkOrderIn,
    WorkOrderUpdate,
)
from api.deps import Conn, CurrentUser
from api.errors import problems
from api.export import EXPORT_RESPONSES, XLSX_MEDIA_TYPE, ExportFormat, table_response
from api.inputs import DbText, JsonObject
from api.scopes.access import NOT_FOUND, resolve
from api.scopes.models import Level
from core.settings import platform_settings
from patrol import alerts, report, workorders

router = APIRouter(prefix="/api/v1", tags=["patrol"])

Code = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$", examples=["421303"])]
Id = Annotated[int, Path(ge=1, le=2**62)]
RuleId = Annotated[str, Path(pattern=r"^[a-z0-9_]{2,64}$", examples=["gateway_offline"])]
PATROL_LEVELS = ("province", "city", "county", "school")  # what silences, windows, overrides and rounds cover
WRITE = problems(403)
ALERT_COLUMNS = ("id", "severity", "state", "rule_id", "rule_title", "school_name", "device_id", "room", "summary",
                 "first_seen", "last_seen", "count", "team_name", "acked_by")
ORDER_COLUMNS = ("id", "status", "title", "school_code", "device_id", "assignee", "created_at", "deadline",
                 "resolution")


@router.get("/scopes/{level}/{code}/alerts", summary="Alerts in a scope, worst and newest first",
            responses=EXPORT_RESPONSES)
def list_alerts(level: Level, code: Code, conn: Conn, user: CurrentUser,
                state: Annotated[list[AlertState] | None, Query()] = None, severity: Severity | None = None,
                rule: Annotated[DbText | None, Query(max_length=64)] = None, include_inhibited: bool = False,
                limit: Annotated[int, Query(ge=1, le=5000)] = 200,
                format: ExportFormat = "json"):  # noqa: A002 - query name
    """Open alerts unless `state` asks for others; inhibited ones only with include_inhibited."""
    scope = resolve(conn, user, level, code)
    rows = alerts.list_alerts(conn, scope.level, scope.code, states=state, severity=severity, rule=rule,
                              include_inhibited=include_inhibited, limit=limit)
    return rows if format == "json" else table_response(rows, ALERT_COLUMNS, format, f"alerts-{code}")


@router.get("/scopes/{level}/{code}/alerts/summary", response_model=AlertSummary,
            summary="Open alerts by severity")
def alert_summary(level: Level, code: Code, conn: Conn, user: CurrentUser) -> dict:
    """How many alerts are open, by severity, and how many are suppressed behind a root cause."""
    scope = resolve(conn, user, level, code)
    return service.summary(conn, scope.level, scope.code)


@router.get("/scopes/{level}/{code}/alerts/by-school", summary="Open alerts grouped per school")
def alerts_by_school(level: Level, code: Code, conn: Conn, user: CurrentUser) -> list[dict]:
    """One line per school with counts by severity: a school whose gateway is down is one incident."""
    scope = resolve(conn, user, level, code)
    return alerts.alerts_by_school(conn, scope.level, scope.code)


@router.get("/alerts/{alert_id}", summary="An alert, the alerts it suppresses, and its notifications")
def get_alert(alert_id: Id, conn: Conn, user: CurrentUser) -> dict:
    """The alert if its school is in the user's scope."""
    return service.visible_alert(conn, user, alert_id)


@router.post("/alerts/{alert_id}/ack", summary="Acknowledge a firing alert", responses=problems(403, 409))
def acknowledge(alert_id: Id, conn: Conn, user: CurrentUser) -> dict:
    """Acknowledge it (and what it suppresses); 409 when it is not firing."""
    service.require(user, service.WRITE_ROLES, "acknowledge alerts")
    service.visible_alert(conn, user, alert_id)
    row = alerts.acknowledge(conn, alert_id, user.username, service.now())
    if row is None:
        raise HTTPException(status.HTTP_409_CONFLICT, "only a firing alert can be acknowledged")
    service.audited(conn, user, "alert.ack", str(alert_id))
    return row


@router.post("/alerts/{alert_id}/work-order", status_code=201, summary="Open a work order (工单) from an alert",
             responses=WRITE)
def open_work_order(alert_id: Id, body: WorkOrderIn, conn: Conn, user: CurrentUser) -> dict:
    """Open one (or return the one already open), acknowledging the alert."""
    service.require(user, service.WRITE_ROLES, "open work orders")
    service.visible_alert(conn, user, alert_id)
    order = workorders.open_work_order(conn, alert_id, user.username, service.now(), assignee=body.assignee,
                                       deadline=body.deadline, title=body.title)
    service.audited(conn, user, "work_order.open", str(order["id"]), body.model_dump(mode="json"))
    return order


@router.get("/scopes/{level}/{code}/work-orders", summary="Work orders in a scope", responses=EXPORT_RESPONSES)
def list_work_orders(level: Level, code: Code, conn: Conn, user: CurrentUser,
                     status_: Annotated[list[OrderStatus] | None, Query(alias="status", max_length=8)] = None,
                     format: ExportFormat = "json"):  # noqa: A002 - query name
    """Work orders, newest first; CSV or XLSX with format."""
    scope = resolve(conn, user, level, code)
    rows = workorders.list_work_orders(conn, scope.level, scope.code, statuses=status_)
    return rows if format == "json" else table_response(rows, ORDER_COLUMNS, format, f"work-orders-{code}")


@router.patch("/work-orders/{order_id}", summary="Move a work order on", responses=problems(403, 409))
def update_work_order(order_id: Id, body: WorkOrderUpdate, conn: Conn, user: CurrentUser) -> dict:
    """Start, finish (with a resolution), accept or reject, cancel; 409 for a move its state does not allow."""
    service.require(user, service.WRITE_ROLES, "update work orders")
    service.visible_order(conn, user, order_id)
    try:
        order = workorders.update_work_order(conn, order_id, body.status, user.username, service.now(),
                                             note=body.note, assignee=body.assignee)
    except workorders.WorkOrderError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    service.audited(conn, user, "work_order.update", str(order_id), body.model_dump(mode="json"))
    return order


@router.get("/scopes/{level}/{code}/response-times", summary="Mean time to acknowledge and to resolve")
def response_times(level: Level, code: Code, conn: Conn, user: CurrentUser,
                   days: Annotated[int, Query(ge=1, le=366)] = 30, by: Level | None = None) -> list[dict]:
    """MTTA and MTTR in seconds of alerts fired in the last `days`, per child level `by`."""
    scope = resolve(conn, user, level, code)
    end = service.now()
    try:
        return workorders.response_times(conn, scope.level, scope.code, end - timedelta(days=days), end, by)
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None


def _patrol_scope(conn: Conn, user: CurrentUser, level: str, code: str, what: str):
    """The scope, if the user may see it and the patrol's `what` can cover it (not a community)."""
    scope = resolve(conn, user, level, code)
    if scope.level not in PATROL_LEVELS:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"{what} cover a province, city, county or school, not a {scope.level}")
    return scope


def _known_rule(conn: Conn, rule_id: str) -> None:
    if conn.execute("SELECT 1 FROM patrol_rule WHERE id = %s", (rule_id,)).fetchone() is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"no patrol rule {rule_id!r}")


@router.post("/scopes/{level}/{code}/silences", status_code=201, summary="Silence alerts in a scope until a time",
             responses=WRITE)
def create_silence(level: Level, code: Code, body: SilenceIn, conn: Conn, user: CurrentUser) -> dict:
    """Mute matching alerts (a rule, a device, or everything in the scope) with a reason and an end."""
    service.require(user, service.WRITE_ROLES, "silence alerts")
    scope = _patrol_scope(conn, user, level, code, "silences")
    if body.starts_at is None and body.ends_at <= service.now():
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "ends_at must be in the future")
    if body.rule_id is not None:
        _known_rule(conn, body.rule_id)
    if body.device_id:
        device = conn.execute("SELECT school_code FROM device WHERE id = %s", (body.device_id,)).fetchone()
        if device is None:
            raise NOT_FOUND
        resolve(conn, user, "school", device["school_code"])
    silence_id = alerts.create_silence(conn, ends_at=body.ends_at, reason=body.reason, created_by=user.username,
                                       starts_at=body.starts_at, rule_id=body.rule_id, scope_level=scope.level,
                                       scope_code=scope.code, device_id=body.device_id)
    service.audited(conn, user, "silence.create", str(silence_id), body.model_dump(mode="json"))
    return {"id": silence_id}


@router.post("/scopes/{level}/{code}/maintenance", status_code=201, summary="Plan a maintenance window",
             responses=WRITE)
def create_maintenance(level: Level, code: Code, body: MaintenanceIn, conn: Conn, user: CurrentUser) -> dict:
    """Nothing in the scope is a fault during the window."""
    service.require(user, service.WRITE_ROLES, "plan maintenance")
    scope = _patrol_scope(conn, user, level, code, "maintenance windows")
    window = alerts.create_maintenance(conn, scope.level, scope.code, body.starts_at, body.ends_at, body.reason,
                                       user.username)
    service.audited(conn, user, "maintenance.create", str(window), body.model_dump(mode="json"))
    return {"id": window}


@router.get("/patrol/rules", summary="Patrol rules with their defaults and per-scope overrides")
def list_rules(conn: Conn, user: CurrentUser) -> list[dict]:
    """Every rule."""
    return alerts.list_rules(conn)


@router.patch("/patrol/rules/{rule_id}", summary="Change a rule's defaults (admin)", responses=WRITE)
def update_rule(rule_id: RuleId, body: RuleUpdate, conn: Conn, user: CurrentUser) -> dict:
    """Thresholds, severity, for-duration, enabled."""
    service.require(user, {"admin"}, "change patrol rules")
    row = alerts.update_rule(conn, rule_id, **body.model_dump())
    if row is None:
        raise NOT_FOUND
    service.audited(conn, user, "rule.update", rule_id, body.model_dump(mode="json"))
    return row


@router.put("/scopes/{level}/{code}/patrol/rules/{rule_id}", status_code=204,
            summary="Override a rule's thresholds for a scope (empty params remove the override)", responses=WRITE)
def set_override(level: Level, code: Code, rule_id: RuleId, params: JsonObject, conn: Conn,
                 user: CurrentUser) -> None:
    """Per-scope thresholds; the smallest scope's override wins."""
    service.require(user, {"admin", "manager"}, "override patrol rules")
    scope = _patrol_scope(conn, user, level, code, "rule overrides")
    if not any(r["id"] == rule_id for r in alerts.list_rules(conn)):
        raise NOT_FOUND
    alerts.set_override(conn, rule_id, scope.level, scope.code, params)
    service.audited(conn, user, "rule.override", f"{rule_id}@{scope.level}:{scope.code}", params)


@router.post("/scopes/{level}/{code}/patrol/rounds", status_code=201, summary="Run a patrol round now",
             responses=WRITE)
def run_round(level: Level, code: Code, conn: Conn, user: CurrentUser) -> dict:
    """Check the scope now and record what was found and what changed since the last round."""
    service.require(user, service.WRITE_ROLES, "run patrol rounds")
    scope = _patrol_scope(conn, user, level, code, "patrol rounds")
    round_id = report.run_round(conn, scope.level, scope.code, service.now(), tz=platform_settings().timezone)
    service.audited(conn, user, "patrol.round", str(round_id))
    return {"id": round_id}


@router.get("/scopes/{level}/{code}/patrol/rounds", summary="The scope's latest patrol rounds")
def list_rounds(level: Level, code: Code, conn: Conn, user: CurrentUser) -> list[dict]:
    """Newest first, without findings."""
    scope = resolve(conn, user, level, code)
    return report.list_rounds(conn, scope.level, scope.code)


@router.get("/patrol/rounds/{round_id}", summary="A patrol round's report (巡检报告): JSON, HTML or XLSX",
            responses={200: {"description": "JSON by default; with format=html a page, with format=xlsx a workbook",
                             "content": {"text/html": {"schema": {"type": "string"}},
                                         XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}}}})
def get_round(round_id: Id, conn: Conn, user: CurrentUser,
              format: Annotated[str, Query(pattern="^(json|html|xlsx)$")] = "json"):  # noqa: A002
    """The round with its findings; format=html or xlsx to download the report."""
    found = report.load_round(conn, round_id)
    if found is None:
        raise NOT_FOUND
    resolve(conn, user, found["scope_level"], found["scope_code"])
    tz = platform_settings().timezone
    if format == "html":
        return HTMLResponse(report.render_html(found, tz))
    if format == "xlsx":
        return Response(report.render_xlsx(found, tz), media_type=XLSX_MEDIA_TYPE,
                        headers={"Content-Disposition": f'attachment; filename="patrol-{round_id}.xlsx"'})
    return found


@router.get("/scopes/{level}/{code}/patrol/classrooms", summary="巡课: classrooms in session now, with snapshot stats")
def classrooms_in_session(level: Level, code: Code, conn: Conn, user: CurrentUser) -> list[dict]:
    """Main recorders streaming and receiving boards in a running remote lesson."""
    scope = resolve(conn, user, level, code)
    return report.classrooms_in_session(conn, scope.level, scope.code, service.now(), platform_settings().timezone)
