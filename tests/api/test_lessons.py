"""The three classrooms: sessions matched from device reports, figures, import, scope bounding."""

import csv
import io
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from openpyxl import Workbook

from rollups.matching import match_sessions
from tests.fixtures.app import login

TZ = ZoneInfo("Asia/Shanghai")
WEEK = "2024-W42"  # Monday 2024-10-14 .. Sunday 2024-10-20, long past
MON, TUE, WED, THU, FRI = (date(2024, 10, 14) + timedelta(days=i) for i in range(5))
_seq = iter(range(1, 1_000_000))


def at(day: date, hh: int, mm: int, ss: int = 0) -> datetime:
    """A local (Asia/Shanghai) moment."""
    return datetime.combine(day, time(hh, mm, ss), TZ)


def event(db, device: str, moment: datetime, type_: str, lesson: str, role: str = "main") -> None:
    db.execute("INSERT INTO device_event (device_id, time, seq, type, lesson_id, lesson_role) "
               "VALUES (%s, %s, %s, %s, %s, %s)", (device, moment, next(_seq), type_, lesson, role))


def streaming(db, device: str, lesson: str, start: datetime, minutes: int) -> None:
    """One streaming reading a minute, 40 s into each minute."""
    for i in range(minutes):
        db.execute("INSERT INTO recorder_telemetry (device_id, time, seq, recording, streaming, dropped_frames, "
                   "cameras_total, cameras_online, lesson_id) VALUES (%s, %s, %s, true, true, 0, 3, 3, %s)",
                   (device, start + timedelta(seconds=40 + 60 * i), next(_seq), lesson))


def lesson(registry, lesson_id: str, kind: str, main: str, weekday: int, start: time, end: time,
           receivers: list[str], valid=(date(2024, 9, 1), date(2025, 7, 3))) -> None:
    registry.lesson(main, receivers, lesson_id=lesson_id, kind=kind, weekday=weekday, starts=start, ends=end,
                    valid_from=valid[0], valid_until=valid[1])


@pytest.fixture
def area(db, registry):
    """Suizhou (two counties) and Wuhan; a main school, two teaching points, a rural primary school."""
    registry.area()
    registry.area(county="421321", names=("湖北省", "随州市", "随县"))
    registry.area(city="420100", county="420102", names=("湖北省", "武汉市", "江岸区"))
    main = registry.school(county="421303")
    tp1 = registry.school(county="421303", locale="rural", stage="teaching_point")
    tp2 = registry.school(county="421321", locale="rural", stage="teaching_point")
    rural = registry.school(county="421303", locale="rural")
    wuhan = registry.school(county="420102", city="420100")
    ids = {"R1": registry.device(main, "recorder"), "B1": registry.device(tp1), "B2": registry.device(tp2),
           "B3": registry.device(rural), "RX": registry.device(wuhan, "recorder"), "BX": registry.device(wuhan),
           "BM": registry.device(main)}
    registry.user("suizhou", "city", "421300")
    registry.user("suixian", "county", "421321")
    registry.user("admin", "province", "420000", role="admin")
    registry.user("looker", "city", "421300", role="viewer")
    return ids


@pytest.fixture
def week42(db, registry, area):
    """Three sessions in 2024-W42: L1 held (events), L2 missed, L3 held (telemetry only)."""
    d = area
    lesson(registry, "L1", "dedicated", d["R1"], 1, time(8, 0), time(8, 40), [d["B1"]])
    lesson(registry, "L2", "dedicated", d["R1"], 2, time(8, 0), time(8, 40), [d["B2"]])
    lesson(registry, "L3", "master", d["R1"], 3, time(10, 0), time(10, 40), [d["B1"], d["B3"]])
    event(db, d["R1"], at(MON, 7, 59), "stream_start", "L1")
    event(db, d["B1"], at(MON, 7, 58), "lesson_start", "L1", "receiving")
    event(db, d["R1"], at(MON, 8, 40), "stream_stop", "L1")
    streaming(db, d["R1"], "L3", at(WED, 10, 0), 40)
    event(db, d["B3"], at(WED, 10, 0), "lesson_start", "L3", "receiving")
    match_sessions(db, MON, date(2024, 10, 20), datetime.now(UTC))
    return d


def _sessions(db) -> dict[str, dict]:
    return {r["lesson_id"]: r for r in db.execute("SELECT * FROM lesson_session ORDER BY lesson_id")}


def test_sessions_are_matched_from_events_and_telemetry(db, week42):
    s = _sessions(db)
    assert s["L1"]["status"] == "held" and s["L1"]["main_streamed_minutes"] == 40
    assert s["L1"]["receivers_expected"] == 1 and s["L1"]["receivers_joined"] == 1
    assert s["L2"]["status"] == "missed" and s["L2"]["main_streamed_minutes"] == 0
    assert s["L3"]["status"] == "held" and s["L3"]["main_streamed_minutes"] == 40
    assert (s["L3"]["receivers_expected"], s["L3"]["receivers_joined"]) == (2, 1)
    assert s["L1"]["started_at"] == at(MON, 8, 0) and s["L1"]["ended_at"] == at(MON, 8, 40)


def test_interrupted_partial_and_not_yet_due(db, registry, area):
    d = area
    lesson(registry, "L4", "elite", d["R1"], 4, time(14, 0), time(14, 40), [d["B1"]])
    lesson(registry, "L5", "elite", d["R1"], 5, time(14, 0), time(14, 40), [d["B1"]])
    # L4: stops at 14:10, back at 14:25 (25 of 40 minutes): interrupted once
    event(db, d["R1"], at(THU, 14, 0), "stream_start", "L4")
    event(db, d["R1"], at(THU, 14, 10), "stream_stop", "L4")
    event(db, d["R1"], at(THU, 14, 25), "stream_start", "L4")
    event(db, d["R1"], at(THU, 14, 40), "stream_stop", "L4")
    event(db, d["B1"], at(THU, 14, 0), "lesson_start", "L4", "receiving")
    # L5: streamed throughout, but no receiving classroom joined: partial
    streaming(db, d["R1"], "L5", at(FRI, 14, 0), 40)
    match_sessions(db, THU, FRI, datetime.now(UTC))
    s = _sessions(db)
    assert (s["L4"]["status"], s["L4"]["interruptions"], s["L4"]["main_streamed_minutes"]) == ("interrupted", 1, 25)
    assert (s["L5"]["status"], s["L5"]["interruptions"]) == ("partial", 0)
    # Before the start, and within the 10-minute grace, a session is still only scheduled
    match_sessions(db, THU, FRI, at(THU, 13, 0))
    assert {r["status"] for r in _sessions(db).values()} == {"scheduled"}
    match_sessions(db, THU, FRI, at(FRI, 14, 5))
    assert _sessions(db)["L5"]["status"] == "scheduled"


def test_holidays_and_make_up_days_follow_the_calendar(db, registry, area):
    lesson(registry, "L1", "dedicated", area["R1"], 1, time(8, 0), time(8, 40), [area["B1"]])
    registry.calendar_day(MON, name="假期")
    assert match_sessions(db, MON, date(2024, 10, 20), datetime.now(UTC)) == 0


def test_summary_figures_and_children(api, week42):
    body = api.get(f"/api/v1/scopes/city/421300/lessons/summary?week={WEEK}", headers=login(api, "suizhou")).json()
    assert body["week_start"] == "2024-10-14"
    f = {x["kind"]: x for x in body["figures"]}
    every = f["all"]
    # 3 sessions scheduled and past, 2 held: 开课率 2/3
    assert (every["sessions_scheduled"], every["sessions_past"], every["sessions_held"]) == (3, 3, 2)
    assert every["opening_rate"] == round(2 / 3, 4)
    assert every["hours_delivered"] == round(80 / 60, 2) and every["main_classrooms"] == 1
    assert every["weekly_lessons_per_main_classroom"] == 2.0
    # received by B1 (teaching point 1) and B3 (rural school); teaching point 2 missed out: reach 1/2
    assert (every["receiving_classrooms"], every["receiving_schools"], every["receiving_classes"]) == (2, 2, 2)
    assert (every["teaching_points"], every["teaching_points_reached"], every["teaching_point_reach"]) == (2, 1, 0.5)
    # pairs (main, receiver) over the 4 weeks to W42: TP1 and rural held every week, TP2 never
    assert (every["pairs"], every["pairs_meeting_quota"]) == (3, 2)
    assert f["dedicated"]["opening_rate"] == 0.5 and f["master"]["opening_rate"] == 1.0
    assert f["elite"]["sessions_scheduled"] == 0 and f["elite"]["opening_rate"] is None
    kids = {c["code"]: {x["kind"]: x for x in c["figures"]}["all"] for c in body["children"]}
    assert kids["421303"]["sessions_held"] == 2 and kids["421321"]["sessions_scheduled"] == 0
    assert kids["421303"]["teaching_point_reach"] == 1.0 and kids["421321"]["teaching_point_reach"] == 0.0


def test_sessions_list_is_bounded_filtered_and_exported(api, week42):
    params = {"day_from": "2024-10-14", "day_to": "2024-10-20"}
    city = api.get("/api/v1/scopes/city/421300/lessons/sessions", params=params, headers=login(api, "suizhou"))
    assert city.json()["total"] == 3
    missed = api.get("/api/v1/scopes/city/421300/lessons/sessions", params={**params, "status": "missed"},
                     headers=login(api, "suizhou")).json()
    assert [i["lesson_id"] for i in missed["items"]] == ["L2"]
    # Suixian only receives L2 (teaching point 2): it sees that session and no other
    county = api.get("/api/v1/scopes/county/421321/lessons/sessions", params=params, headers=login(api, "suixian"))
    assert [i["lesson_id"] for i in county.json()["items"]] == ["L2"]
    exported = api.get("/api/v1/scopes/city/421300/lessons/sessions", params={**params, "format": "csv"},
                       headers=login(api, "suizhou"))
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert len(rows) == 3 and rows[0]["status"] in {"held", "missed"}


def test_other_scopes_are_not_found(api, week42):
    headers = login(api, "suizhou")
    for path in ("lessons/summary", "lessons/sessions", "lessons/live", "lessons/weekly"):
        assert api.get(f"/api/v1/scopes/city/420100/{path}", headers=headers).status_code == 404
    assert api.get("/api/v1/scopes/county/421303/lessons/summary", headers=login(api, "suixian")).status_code == 404


def test_match_through_the_api_and_the_weekly_trend(db, api, registry, area):
    monday = datetime.now(TZ).date() - timedelta(days=datetime.now(TZ).weekday() + 7)  # last week's Monday
    lesson(registry, "LW", "dedicated", area["R1"], 1, time(8, 0), time(8, 40), [area["B2"]],
           valid=(monday - timedelta(days=30), monday + timedelta(days=30)))
    event(db, area["R1"], at(monday, 8, 0), "stream_start", "LW")
    event(db, area["B2"], at(monday, 8, 1), "lesson_start", "LW", "receiving")
    body = {"day_from": str(monday), "day_to": str(monday + timedelta(days=6))}
    assert api.post("/api/v1/lessons/match", json=body, headers=login(api, "suizhou")).status_code == 403
    r = api.post("/api/v1/lessons/match", json=body, headers=login(api, "admin"))
    assert r.status_code == 200 and r.json()["by_status"] == {"held": 1}
    weeks = api.get("/api/v1/scopes/city/421300/lessons/weekly?weeks=3", headers=login(api, "suizhou")).json()
    assert [w["sessions_held"] for w in weeks] == [0, 1, 0] and weeks[1]["opening_rate"] == 1.0
    assert db.execute("SELECT count(*) AS n FROM audit_log WHERE action = 'lessons.match'").fetchone()["n"] == 1


def test_live_lessons_show_their_classrooms_inside_the_scope(db, api, registry, area):
    now = datetime.now(TZ)
    if not time(0, 15) <= now.time() <= time(23, 15):
        pytest.skip("the slot around now would cross midnight")
    registry.calendar_day(now.date(), school_day=True, name="test")
    start, end = (now - timedelta(minutes=10)).time(), (now + timedelta(minutes=30)).time()
    lesson(registry, "LN", "elite", area["R1"], now.isoweekday(), start, end, [area["B1"], area["BX"]],
           valid=(now.date(), now.date()))
    registry.device_state(area["R1"], online=True, streaming=True)
    registry.device_state(area["B1"], online=True, in_use=True)
    event(db, area["B1"], datetime.now(UTC) - timedelta(minutes=5), "lesson_start", "LN", "receiving")
    live = api.get("/api/v1/scopes/city/421300/lessons/live", headers=login(api, "suizhou")).json()
    assert [x["lesson_id"] for x in live] == ["LN"] and live[0]["main_streaming"] is True
    # the Wuhan receiver is outside Suizhou's scope and is left out
    assert [(r["device_id"], r["joined"]) for r in live[0]["receivers"]] == [(area["B1"], True)]


def _row(area, lesson_id="T1", **overrides) -> dict:
    row = {"id": lesson_id, "kind": "dedicated", "subject": "美术", "main_device_id": area["R1"],
           "weekday": 2, "starts_at": "09:00", "ends_at": "09:40", "valid_from": "2026-09-01",
           "valid_until": "2027-01-20", "receivers": f"{area['B1']};{area['B2']}:三年级2班"}
    return {**row, **overrides}


def test_import_json_writes_all_rows_and_audits(db, api, area):
    r = api.post("/api/v1/lessons/timetable", json=[_row(area), _row(area, "T2", kind="elite")],
                 headers=login(api, "suizhou"))
    assert r.status_code == 201, r.text
    assert r.json() == {"lessons": 2, "created": 2, "updated": 0, "receivers": 4}
    classes = {x["device_id"]: x["class_name"] for x in db.execute(
        "SELECT device_id, class_name FROM remote_lesson_receiver WHERE lesson_id = 'T1'")}
    assert classes == {area["B1"]: "101", area["B2"]: "三年级2班"}  # the class defaults to the room
    again = api.post("/api/v1/lessons/timetable", json=[_row(area, subject="书法")], headers=login(api, "suizhou"))
    assert again.json()["updated"] == 1
    assert db.execute("SELECT count(*) AS n FROM audit_log WHERE action = 'lessons.timetable.import'"
                      ).fetchone()["n"] == 2


def test_import_with_bad_rows_is_refused_with_row_numbers(db, api, area):
    rows = [_row(area),
            _row(area, "T2", receivers=area["BM"]),  # receiver at the main classroom's school
            _row(area, "T3", ends_at="08:00"),  # ends before it starts
            _row(area, "T4", main_device_id=area["RX"]),  # a Wuhan recorder: outside Suizhou's scope
            _row(area, "T5", kind="lecture")]
    r = api.post("/api/v1/lessons/timetable", json=rows, headers=login(api, "suizhou"))
    assert r.status_code == 422
    errors = [(e["row"], e["column"]) for e in r.json()["errors"]]
    assert errors == [(2, "receivers"), (3, "ends_at"), (4, "main_device_id"), (5, "kind")]
    assert db.execute("SELECT count(*) AS n FROM remote_lesson").fetchone()["n"] == 0


def test_import_files(db, api, area):
    headers = login(api, "suizhou")
    columns = list(_row(area))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, columns)
    writer.writeheader()
    writer.writerow(_row(area))
    writer.writerow(_row(area, "T2", weekday="9"))
    r = api.post("/api/v1/lessons/timetable/upload", headers=headers,
                 files={"file": ("课表.csv", buf.getvalue().encode("utf-8-sig"), "text/csv")})
    assert r.status_code == 422 and r.json()["errors"][0]["row"] == 3 and r.json()["errors"][0]["column"] == "weekday"

    book = Workbook()
    sheet = book.active
    sheet.append(columns)
    sheet.append([_row(area)[c] for c in columns[:5]] + [time(9, 0), time(9, 40), datetime(2026, 9, 1),
                                                          datetime(2027, 1, 20), _row(area)["receivers"]])
    out = io.BytesIO()
    book.save(out)
    r = api.post("/api/v1/lessons/timetable/upload", headers=headers,
                 files={"file": ("课表.xlsx", out.getvalue(), "application/octet-stream")})
    assert r.status_code == 201, r.text
    assert db.execute("SELECT starts_at FROM remote_lesson WHERE id = 'T1'").fetchone()["starts_at"] == time(9, 0)


def test_viewers_may_not_import(api, area):
    r = api.post("/api/v1/lessons/timetable", json=[_row(area)], headers=login(api, "looker"))
    assert r.status_code == 403
