"""Device queries and commands; every device is reached through its school's scope."""

import json
import uuid
from datetime import UTC, datetime, timedelta

from psycopg import Connection, sql

from api import audit
from api.auth.models import User
from api.devices.models import CommandIn, CommandOut, DeviceDetail, DevicePage, DeviceRow
from api.devices.publisher import CommandPublisher
from api.scopes.access import NOT_FOUND, bounded, resolve
from api.scopes.models import Scope
from core.contract import Command

_ROW = """
SELECT d.id, d.kind, d.school_code, s.name AS school_name, k.name AS county_name, d.room, d.vendor, d.model,
       coalesce(st.online, false) AS online, st.last_seen
FROM device d JOIN school s ON s.code = d.school_code JOIN county k ON k.code = s.county_code
LEFT JOIN device_state st ON st.device_id = d.id
"""

_COMMAND = """
SELECT c.*, CASE WHEN c.result IS NOT NULL THEN c.result
                 WHEN c.published_at IS NULL THEN 'unsent'
                 WHEN c.expires_at < now() THEN 'expired'
                 ELSE 'pending' END AS status
FROM device_command c
"""

HISTORY_TABLE = {"board": "board_telemetry", "recorder": "recorder_telemetry", "gateway": "gateway_telemetry"}
COMMAND_ROLES = {"admin", "manager", "operations"}


def list_devices(conn: Connection, scope: Scope, user: User, *, kind: str | None, online: bool | None,
                 search: str | None, page: int, page_size: int | None) -> DevicePage:
    """A filtered, paged list of the devices in a scope (page_size None: all, for export)."""
    where, params = bounded(scope.level, user=user)
    filters = [where]
    if kind:
        filters.append(sql.SQL("d.kind = %(kind)s"))
    if online is not None:
        filters.append(sql.SQL("coalesce(st.online, false) = %(online)s"))
    if search:
        filters.append(sql.SQL("(d.id ILIKE %(search)s OR s.name ILIKE %(search)s OR d.room ILIKE %(search)s)"))
    params |= {"scope_code": scope.code, "kind": kind, "online": online, "search": f"%{search}%",
               "limit": page_size, "offset": (page - 1) * (page_size or 0)}
    cond = sql.SQL(" AND ").join(filters)
    total = conn.execute(sql.SQL(
        "SELECT count(*) AS n FROM device d JOIN school s ON s.code = d.school_code "
        "LEFT JOIN device_state st ON st.device_id = d.id WHERE {}").format(cond), params).fetchone()["n"]
    rows = conn.execute(sql.SQL(_ROW + " WHERE {} ORDER BY d.id LIMIT %(limit)s OFFSET %(offset)s").format(cond),
                        params).fetchall()
    return DevicePage(total=total, page=page, page_size=page_size or total, items=[DeviceRow(**r) for r in rows])


def get_device(conn: Connection, user: User, device_id: str) -> DeviceDetail:
    """A device the user may see, with its state; 404 otherwise."""
    row = conn.execute(
        _ROW.replace("st.last_seen", "st.last_seen, st.status_time, st.in_use, st.recording, st.streaming, "
                     "coalesce(st.last_values, '{}'::jsonb) AS last_values, d.installed_on::text")
        + " WHERE d.id = %s", (device_id,)).fetchone()
    if row is None:
        raise NOT_FOUND
    resolve(conn, user, "school", row["school_code"])  # 404 when the school is outside the user's scope
    anomalies = conn.execute(
        "SELECT time, counter, kind, previous, value, elapsed_s, counted, "
        "count(*) FILTER (WHERE time > now() - interval '30 days') OVER () AS recent "
        "FROM counter_anomaly WHERE device_id = %s ORDER BY time DESC LIMIT 10", (device_id,)).fetchall()
    return DeviceDetail(**row, counter_anomalies_30d=anomalies[0]["recent"] if anomalies else 0,
                        counter_anomalies=anomalies)


def history(conn: Connection, device: DeviceDetail, hours: int) -> list[dict]:
    """The device's readings over the last `hours`, oldest first."""
    table = sql.Identifier(HISTORY_TABLE[device.kind])
    rows = conn.execute(sql.SQL(
        "SELECT * FROM {} WHERE device_id = %s AND time > now() - make_interval(hours => %s) "
        "ORDER BY time LIMIT 5000").format(table), (device.id, hours)).fetchall()
    return [{k: v for k, v in r.items() if k not in ("device_id", "received_at")} for r in rows]


def events(conn: Connection, device: DeviceDetail, limit: int) -> list[dict]:
    """The device's latest events, newest first."""
    return conn.execute(
        "SELECT time, type, lesson_id, lesson_role, detail FROM device_event WHERE device_id = %s "
        "ORDER BY time DESC LIMIT %s", (device.id, limit)).fetchall()


def send_commands(conn: Connection, publisher: CommandPublisher, user: User, device_ids: list[str],
                  body: CommandIn, batch_id: str | None = None) -> tuple[list[str], int]:
    """Record, publish and audit a command to each device; the ids created and how many were published."""
    now = datetime.now(UTC)
    expires = now + timedelta(seconds=body.ttl_s)
    commands = [Command(v=1, id=uuid.uuid4().hex, name=body.name, params=body.params, issued_at=now,
                        expires_at=expires) for _ in device_ids]
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO device_command (id, device_id, name, params, batch_id, issued_by, issued_at, expires_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            [(c.id, d, c.name.value, json.dumps(c.params, ensure_ascii=False), batch_id, user.username, now, expires)
             for c, d in zip(commands, device_ids, strict=True)])
    audit.record(conn, user, "command", batch_id or device_ids[0],
                 {"name": body.name.value, "params": body.params, "devices": len(device_ids)})
    conn.commit()  # the command exists before the device can acknowledge it
    published = [c.id for c, d in zip(commands, device_ids, strict=True) if publisher.send(d, c, body.ttl_s)]
    if published:
        conn.execute("UPDATE device_command SET published_at = now() WHERE id = ANY(%s)", (published,))
    return [c.id for c in commands], len(published)


def scope_device_ids(conn: Connection, scope: Scope, user: User, kind: str) -> list[str]:
    """Ids of every device of a kind in a scope the user may see."""
    where, params = bounded(scope.level, user=user)
    rows = conn.execute(sql.SQL(
        "SELECT d.id FROM device d JOIN school s ON s.code = d.school_code WHERE {} AND d.kind = %(kind)s "
        "ORDER BY d.id").format(where), params | {"scope_code": scope.code, "kind": kind}).fetchall()
    return [r["id"] for r in rows]


def commands_of(conn: Connection, device_id: str, limit: int = 50) -> list[CommandOut]:
    """A device's latest commands with their outcome."""
    rows = conn.execute(_COMMAND + " WHERE c.device_id = %s ORDER BY c.issued_at DESC LIMIT %s",
                        (device_id, limit)).fetchall()
    return [CommandOut(**r) for r in rows]


def get_command(conn: Connection, user: User, command_id: str) -> CommandOut:
    """One command, if its device is visible to the user."""
    row = conn.execute(_COMMAND + " WHERE c.id = %s", (command_id,)).fetchone()
    if row is None:
        raise NOT_FOUND
    get_device(conn, user, row["device_id"])
    return CommandOut(**row)
