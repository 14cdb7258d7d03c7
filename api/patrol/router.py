"""Patrol routes. A route's role is checked first (403), then its scope against the user's (404 outside it)."""

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status
from fastapi.responses import HTMLResponse, Response

from api.deps import AskedPeriod, Conn, CurrentUser, PathScope, role
from api.errors import problems
from api.export import EXPORT_RESPONSES, XLSX_MEDIA_TYPE, ExportFormat, table_response
from api.inputs import DbText, JsonObject
from api.patrol import notes, service
from api.patrol.models import (
    Alert,
    AlertDetail,
    AlertRow,
    AlertState,
    AlertSummary,
    Classroom,
    Created,
    MaintenanceIn,
    OrderStatus,
    ResponseTimes,
    Round,
    RoundReport,
    Rule,
    RuleUpdate,
    RuleWithOverrides,
    SchoolAlerts,
    Severity,
    SilenceIn,
    WorkOrder,
    WorkOrderIn,
    WorkOrderRow,
    WorkOrderUpdate,
)
from api.scopes.access import NOT_FOUND, resolve
from core.scope import Level
from core.settings import platform_settings
from patrol import alerts, report, workorders

router = APIRouter(prefix="/api/v1", tags=["patrol"])

Id = Annotated[int, Path(ge=1, le=2**62)]
RuleId = Annotated[str, Path(pattern=r"^[a-z0-9_]{2,64}$", examples=["gateway_offline"])]
WRITE = problems(403)
ALERT_COLUMNS = ("id", "severity", "state", "rule_id", "rule_title", "school_name", "device_id", "room", "summary",
                 "first_seen", "last_seen", "count", "grouped", "team_name", "acked_by")
ORDER_COLUMNS = ("id", "status", "title", "school_code", "device_id", "assignee", "created_at", "deadline",
                 "resolution")


def _writer(action: str):
    """The user, if their role may `action` in the patrol (403 otherwise)."""
    return role(service.WRITE_ROLES, action)


@router.get("/scopes/{level}/{code}/alerts", response_model=list[AlertRow],
            summary="Alerts in a scope, worst and newest first", responses=EXPORT_RESPONSES)
def list_alerts(scope: PathScope, conn: Conn,
                state: Annotated[list[AlertState] | None, Query()] = None, severity: Severity | None = None,
                rule: Annotated[DbText | None, Query(max_length=64)] = None, include_inhibited: bool = False,
                limit: Annotated[int, Query(ge=1, le=5000)] = 200,
                format: ExportFormat = "json") -> list[dict] | Response:  # noqa: A002 - query name
    """Open alerts unless `state` asks for others; inhibited ones only with include_inhibited."""
    rows = service.with_grouped(conn, scope.level, scope.code, alerts.list_alerts(
        conn, scope.level, scope.code, states=state, severity=severity, rule=rule,
        include_inhibited=include_inhibited, limit=limit))
    return rows if format == "json" else table_response(rows, ALERT_COLUMNS, format, f"alerts-{scope.code}")


@router.get("/scopes/{level}/{code}/alerts/summary", response_model=AlertSummary,
            summary="Open alerts by severity")
def alert_summary(scope: PathScope, conn: Conn) -> dict:
    """How many alerts are open, by severity, and how many are suppressed behind a root cause."""
    return service.summary(conn, scope.level, scope.code)


@router.get("/scopes/{level}/{code}/alerts/by-school", response_model=list[SchoolAlerts],
            summary="Open alerts grouped per school")
def alerts_by_school(scope: PathScope, conn: Conn) -> list[dict]:
    """One line per school with counts by severity: a school whose gateway is down is one incident."""
    return alerts.alerts_by_school(conn, scope.level, scope.code)


@router.get("/alerts/{alert_id}", response_model=AlertDetail,
            summary="An alert, the alerts it suppresses, and its notifications")
def get_alert(alert_id: Id, conn: Conn, user: CurrentUser) -> dict:
    """The alert if its school is in the user's scope, with where it is and its work order."""
    return {**service.visible_alert(conn, user, alert_id), **notes.alert_context(conn, alert_id)}


@router.get("/alerts/{alert_id}/grouped", response_model=list[AlertRow], responses=EXPORT_RESPONSES,
            summary="The alerts grouped under an alert's root cause (format=csv|xlsx to export)")
def grouped_alerts(alert_id: Id, conn: Conn, user: CurrentUser,
                   state: Annotated[list[AlertState] | None, Query(max_length=4)] = None,
                   format: ExportFormat = "json") -> list[dict] | Response:  # noqa: A002 - query name
    """The alerts suppressed behind this one (its incident) inside the user's scope, worst and newest
    first: the open ones unless `state` asks for others. 404 if the alert is outside the scope."""
    root = service.visible_alert(conn, user, alert_id)
    rows = service.grouped(conn, user, root, state)
    return rows if format == "json" else table_response(rows, ALERT_COLUMNS, format, f"alerts-grouped-{alert_id}")


@router.post("/alerts/{alert_id}/ack", response_model=Alert, summary="Acknowledge a firing alert",
             responses=problems(403, 409))
def acknowledge(alert_id: Id, conn: Conn, user: _writer("acknowledge alerts")) -> dict:
    """Acknowledge it (and what it suppresses); 409 when it is not firing."""
    service.visible_alert(conn, user, alert_id)
    row = alerts.acknowledge(conn, alert_id, user.username, service.now())
    if row is None:
        raise HTTPException(status.HTTP_409_CONFLICT, "only a firing alert can be acknowledged")
    service.audited(conn, user, "alert.ack", str(alert_id))
    return row


@router.post("/alerts/{alert_id}/work-order", response_model=WorkOrder, status_code=201,
             summary="Open a work order (工单) from an alert", responses=WRITE)
def open_work_order(alert_id: Id, body: WorkOrderIn, conn: Conn, user: _writer("open work orders")) -> dict:
    """Open one (or return the one already open), acknowledging the alert."""
    service.visible_alert(conn, user, alert_id)
    order = workorders.open_work_order(conn, alert_id, user.username, service.now(), assignee=body.assignee,
                                       deadline=body.deadline, title=body.title)
    service.audited(conn, user, "work_order.open", str(order["id"]), body.model_dump(mode="json"))
    return order


@router.get("/scopes/{level}/{code}/work-orders", response_model=list[WorkOrderRow],
            summary="Work orders in a scope", responses=EXPORT_RESPONSES)
def list_work_orders(scope: PathScope, conn: Conn,
                     status_: Annotated[list[OrderStatus] | None, Query(alias="status", max_length=8)] = None,
                     format: ExportFormat = "json") -> list[dict] | Response:  # noqa: A002 - query name
    """Work orders, newest first; CSV or XLSX with format."""
    rows = workorders.list_work_orders(conn, scope.level, scope.code, statuses=status_)
    return rows if format == "json" else table_response(rows, ORDER_COLUMNS, format, f"work-orders-{scope.code}")


@router.patch("/work-orders/{order_id}", response_model=WorkOrder, summary="Move a work order on",
              responses=problems(403, 409))
def update_work_order(order_id: Id, body: WorkOrderUpdate, conn: Conn, user: _writer("update work orders")) -> dict:
    """Start, finish (with a resolution), accept or reject, cancel; 409 for a move its state does not allow."""
    service.visible_order(conn, user, order_id)
    try:
        order = workorders.update_work_order(conn, order_id, body.status, user.username, service.now(),
                                             note=body.note, assignee=body.assignee)
    except workorders.WorkOrderError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    service.audited(conn, user, "work_order.update", str(order_id), body.model_dump(mode="json"))
    return order


@router.get("/scopes/{level}/{code}/response-times", response_model=list[ResponseTimes],
            summary="Mean time to acknowledge and to resolve")
def response_times(scope: PathScope, conn: Conn, period: AskedPeriod,
                   days: Annotated[int, Query(ge=1, le=366, description="the last days (without a period)")] = 30,
                   by: Level | None = None) -> list[dict]:
    """MTTA and MTTR in seconds of alerts fired in the last `days`, or in the days of `period` (or
    `from`/`to`, which then replaces `days`) up to now, per child level `by`."""
    if period.is_now:
        end = service.now()
        start = end - timedelta(days=days)
    else:
        start, end = period.start, period.until
    try:
        return workorders.response_times(conn, scope.level, scope.code, start, end, by)
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None


def _known_rule(conn: Conn, rule_id: str) -> None:
    if conn.execute("SELECT 1 FROM patrol_rule WHERE id = %s", (rule_id,)).fetchone() is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"no patrol rule {rule_id!r}")


@router.post("/scopes/{level}/{code}/silences", response_model=Created, status_code=201,
             summary="Silence alerts in a scope until a time", responses=WRITE)
def create_silence(user: _writer("silence alerts"), scope: PathScope, body: SilenceIn, conn: Conn) -> dict:
    """Mute matching alerts (a rule, a device, or everything in the scope) with a reason and an end."""
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


@router.post("/scopes/{level}/{code}/maintenance", response_model=Created, status_code=201,
             summary="Plan a maintenance window", responses=WRITE)
def create_maintenance(user: _writer("plan maintenance"), scope: PathScope, body: MaintenanceIn,
                       conn: Conn) -> dict:
    """Nothing in the scope is a fault during the window."""
    window = alerts.create_maintenance(conn, scope.level, scope.code, body.starts_at, body.ends_at, body.reason,
                                       user.username)
    service.audited(conn, user, "maintenance.create", str(window), body.model_dump(mode="json"))
    return {"id": window}


@router.get("/patrol/rules", response_model=list[RuleWithOverrides],
            summary="Patrol rules with their defaults and per-scope overrides")
def list_rules(conn: Conn, _user: CurrentUser) -> list[dict]:
    """Every rule."""
    return alerts.list_rules(conn)


@router.patch("/patrol/rules/{rule_id}", response_model=Rule, summary="Change a rule's defaults (admin)",
              responses=WRITE)
def update_rule(rule_id: RuleId, body: RuleUpdate, conn: Conn,
                user: role({"admin"}, "change patrol rules")) -> dict:
    """Thresholds, severity, for-duration, enabled."""
    row = alerts.update_rule(conn, rule_id, **body.model_dump())
    if row is None:
        raise NOT_FOUND
    service.audited(conn, user, "rule.update", rule_id, body.model_dump(mode="json"))
    return row


@router.put("/scopes/{level}/{code}/patrol/rules/{rule_id}", status_code=204,
            summary="Override a rule's thresholds for a scope (empty params remove the override)", responses=WRITE)
def set_override(user: role({"admin", "manager"}, "override patrol rules"), scope: PathScope, rule_id: RuleId,
                 params: JsonObject, conn: Conn) -> None:
    """Per-scope thresholds; the smallest scope's override wins."""
    if not any(r["id"] == rule_id for r in alerts.list_rules(conn)):
        raise NOT_FOUND
    alerts.set_override(conn, rule_id, scope.level, scope.code, params)
    service.audited(conn, user, "rule.override", f"{rule_id}@{scope.level}:{scope.code}", params)


@router.post("/scopes/{level}/{code}/patrol/rounds", response_model=Created, status_code=201,
             summary="Run a patrol round now", responses=WRITE)
def run_round(user: _writer("run patrol rounds"), scope: PathScope, conn: Conn) -> dict:
    """Check the scope now and record what was found and what changed since the last round."""
    round_id = report.run_round(conn, scope.level, scope.code, service.now(), tz=platform_settings().timezone)
    service.audited(conn, user, "patrol.round", str(round_id))
    return {"id": round_id}


@router.get("/scopes/{level}/{code}/patrol/rounds", response_model=list[Round],
            summary="The scope's latest patrol rounds")
def list_rounds(scope: PathScope, conn: Conn) -> list[dict]:
    """Newest first, without findings."""
    return report.list_rounds(conn, scope.level, scope.code)


@router.get("/patrol/rounds/{round_id}", response_model=RoundReport,
            summary="A patrol round's report (巡检报告): JSON, HTML or XLSX",
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


@router.get("/scopes/{level}/{code}/patrol/classrooms", response_model=list[Classroom],
            summary="巡课: classrooms in session now, with snapshot stats")
def classrooms_in_session(scope: PathScope, conn: Conn) -> list[dict]:
    """Main recorders streaming and receiving boards in a running remote lesson."""
    return report.classrooms_in_session(conn, scope.level, scope.code, service.now(), platform_settings().timezone)
