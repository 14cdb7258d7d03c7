"""Timetable import: rows from JSON, CSV or XLSX, checked one by one, written all or nothing.

A row is refused when a field is malformed, when its main classroom or a receiving
classroom is not a device inside the importing user's scope (a device outside it reads
as unknown, so nothing outside the scope is revealed), when a receiver is at the main
classroom's school, or when its id names a lesson of another scope. One refused row
refuses the whole import.
"""

import csv
import io
from datetime import datetime, time
from typing import Any

from fastapi import HTTPException, status
from openpyxl import load_workbook
from psycopg import Connection, sql
from pydantic import ValidationError

from api import audit
from api.auth.models import User
from api.lessons.models import ImportResult, RowError, TimetableRow
from api.scopes.access import bounded

COLUMNS = ("id", "kind", "subject", "main_device_id", "community_code", "weekday", "starts_at", "ends_at",
           "valid_from", "valid_until", "receivers")
OPTIONAL = {"community_code"}
IMPORT_ROLES = {"admin", "manager"}  # who may change the timetable
MAX_ROWS = 5000
MAX_BYTES = 5 * 1024 * 1024
RECEIVER_KINDS = {"board", "recorder"}

Numbered = list[tuple[int, dict[str, Any]]]


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.date() if value.time() == time(0) else value.time()
    if isinstance(value, str):
        return value.strip()
    return value


def rows_from_file(filename: str, content: bytes) -> tuple[Numbered, list[RowError]]:
    """The rows of a CSV or XLSX timetable, numbered as a spreadsheet shows them (header = 1)."""
    if len(content) > MAX_BYTES:
        raise HTTPException(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, f"files are limited to {MAX_BYTES} bytes")
    name = filename.lower()
    # The name decides; without a telling one, an XLSX file is a zip archive and anything else is read as CSV.
    xlsx = name.endswith(".xlsx") or (not name.endswith(".csv") and content.startswith(b"PK\x03\x04"))
    if xlsx:
        try:
            sheet = load_workbook(io.BytesIO(content), read_only=True, data_only=True).worksheets[0]
        except Exception as exc:  # openpyxl raises many kinds on a broken file
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "not a readable XLSX file") from exc
        table = [list(r) for r in sheet.iter_rows(values_only=True)]
    else:
        try:
            table = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
        except UnicodeDecodeError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "CSV files must be UTF-8") from exc
        except csv.Error as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"not a readable CSV file: {exc}") from exc
    if not table:
        return [], [RowError(row=1, column=None, message="the file is empty")]
    header = [str(h).strip().lower() if h is not None else "" for h in table[0]]
    missing = [c for c in COLUMNS if c not in header and c not in OPTIONAL]
    if missing:
        return [], [RowError(row=1, column=c, message="missing column") for c in missing]
    rows = []
    for number, values in enumerate(table[1:], start=2):
        if all(v in (None, "") for v in values):
            continue
        rows.append((number, {h: _cell(v) for h, v in zip(header, values, strict=False) if h in COLUMNS}))
    return rows, []


def parse(rows: Numbered) -> tuple[list[tuple[int, TimetableRow]], list[RowError]]:
    """Each row as a timetable row, or the reasons it is malformed."""
    if len(rows) > MAX_ROWS:
        return [], [RowError(row=rows[MAX_ROWS][0], column=None, message=f"at most {MAX_ROWS} rows per import")]
    parsed, errors = [], []
    seen: dict[str, int] = {}
    for number, raw in rows:
        try:
            row = TimetableRow.model_validate(raw)
        except ValidationError as exc:
            errors += [RowError(row=number, column=str(e["loc"][0]) if e["loc"] else None, message=e["msg"])
                       for e in exc.errors()]
            continue
        if row.id in seen:
            errors.append(RowError(row=number, column="id", message=f"repeats the id of row {seen[row.id]}"))
            continue
        seen[row.id] = number
        parsed.append((number, row))
    return parsed, errors


def _in_scope(user: User) -> tuple[sql.Composable, dict]:
    where, _ = bounded(user.scope_level, "user_scope_code")
    return where, {"user_scope_code": user.scope_code}


def _devices(conn: Connection, user: User, ids: set[str]) -> dict[str, dict]:
    where, params = _in_scope(user)
    query = sql.SQL("""SELECT d.id, d.kind, d.school_code, d.room FROM device d JOIN school s ON s.code = d.school_code
                       WHERE d.id = ANY(%(ids)s) AND {where}""").format(where=where)
    return {r["id"]: r for r in conn.execute(query, {"ids": list(ids), **params})}


def _communities(conn: Connection, user: User, codes: set[str]) -> set[str]:
    where, params = _in_scope(user)
    query = sql.SQL("""SELECT DISTINCT m.community_code FROM community_member m JOIN school s ON s.code = m.school_code
                       WHERE m.community_code = ANY(%(codes)s) AND {where}""").format(where=where)
    return {r["community_code"] for r in conn.execute(query, {"codes": list(codes), **params})}


def _foreign_lessons(conn: Connection, user: User, ids: list[str]) -> set[str]:
    where, params = _in_scope(user)
    query = sql.SQL("""SELECT l.id FROM remote_lesson l JOIN device d ON d.id = l.main_device_id
                       JOIN school s ON s.code = d.school_code
                       WHERE l.id = ANY(%(ids)s) AND NOT ({where})""").format(where=where)
    return {r["id"] for r in conn.execute(query, {"ids": ids, **params})}


def _check(number: int, row: TimetableRow, devices: dict, communities: set[str], foreign: set[str]) -> list[RowError]:
    errors = []
    main = devices.get(row.main_device_id)
    if row.id in foreign:
        errors.append(RowError(row=number, column="id", message="names a lesson outside your scope"))
    if main is None:
        errors.append(RowError(row=number, column="main_device_id", message="no such device in your scope"))
    elif main["kind"] != "recorder":
        errors.append(RowError(row=number, column="main_device_id", message="the main classroom must be a recorder"))
    if row.community_code is not None and row.community_code not in communities:
        errors.append(RowError(row=number, column="community_code", message="no such community in your scope"))
    ids = [r.device_id for r in row.receivers]
    if len(set(ids)) != len(ids):
        errors.append(RowError(row=number, column="receivers", message="a receiver is listed twice"))
    for device_id in ids:
        receiver = devices.get(device_id)
        if receiver is None:
            message = f"{device_id}: no such device in your scope"
        elif receiver["kind"] not in RECEIVER_KINDS:
            message = f"{device_id}: a {receiver['kind']} cannot receive lessons"
        elif main is not None and receiver["school_code"] == main["school_code"]:
            message = f"{device_id}: is at the main classroom's school"
        else:
            continue
        errors.append(RowError(row=number, column="receivers", message=message))
    return errors


def validate(conn: Connection, user: User, rows: Numbered) -> tuple[list[TimetableRow], list[RowError]]:
    """The rows that may be written, and every reason a row may not."""
    parsed, errors = parse(rows)
    device_ids = {r.main_device_id for _, r in parsed} | {x.device_id for _, r in parsed for x in r.receivers}
    devices = _devices(conn, user, device_ids)
    communities = _communities(conn, user, {r.community_code for _, r in parsed if r.community_code})
    foreign = _foreign_lessons(conn, user, [r.id for _, r in parsed])
    for number, row in parsed:
        errors += _check(number, row, devices, communities, foreign)
    errors.sort(key=lambda e: e.row)
    for _, row in parsed:  # a receiver's class defaults to its room
        for receiver in row.receivers:
            if receiver.class_name is None and receiver.device_id in devices:
                receiver.class_name = devices[receiver.device_id]["room"]
    return [r for _, r in parsed], errors


def write(conn: Connection, user: User, lessons: list[TimetableRow], source: str) -> ImportResult:
    """Insert or replace the lessons and their receivers in one transaction, and audit it."""
    ids = [r.id for r in lessons]
    with conn.transaction():
        existing = {r["id"] for r in conn.execute("SELECT id FROM remote_lesson WHERE id = ANY(%s)", (ids,))}
        with conn.cursor() as cur:
            cur.executemany("""
                INSERT INTO remote_lesson (id, kind, subject, main_device_id, community_code, weekday, starts_at,
                                           ends_at, valid_from, valid_until)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                ON CONFLICT (id) DO UPDATE SET kind = EXCLUDED.kind, subject = EXCLUDED.subject,
                    main_device_id = EXCLUDED.main_device_id, community_code = EXCLUDED.community_code,
                    weekday = EXCLUDED.weekday, starts_at = EXCLUDED.starts_at, ends_at = EXCLUDED.ends_at,
                    valid_from = EXCLUDED.valid_from, valid_until = EXCLUDED.valid_until""",
                [(r.id, r.kind, r.subject, r.main_device_id, r.community_code, r.weekday, r.starts_at, r.ends_at,
                  r.valid_from, r.valid_until) for r in lessons])
            cur.execute("DELETE FROM remote_lesson_receiver WHERE lesson_id = ANY(%s)", (ids,))
            receivers = [(r.id, x.device_id, x.class_name) for r in lessons for x in r.receivers]
            cur.executemany("INSERT INTO remote_lesson_receiver (lesson_id, device_id, class_name) "
                            "VALUES (%s, %s, %s)", receivers)
        result = ImportResult(lessons=len(lessons), created=len(set(ids) - existing), updated=len(existing),
                              receivers=len(receivers))
        audit.record(conn, user, "lessons.timetable.import", source,
                     {**result.model_dump(), "ids": ids[:100]})
    return result

