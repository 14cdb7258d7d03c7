"""The patrol through the API: alerts bounded by scope, acknowledgement, work orders, rounds and reports."""

import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from core.calendar import load_calendar
from patrol.engine import run_cycle
from tests.fixtures.app import login


def _alert(db, rule: str, device: str, school: str, *, severity="major", state="firing", inhibited_by=None) -> int:
    now = datetime.now(UTC)
    return db.execute(
        "INSERT INTO alert (rule_id, device_id, school_code, state, severity, summary, first_seen, last_seen, "
        "fired_at, inhibited_by) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (rule, device, school, state, severity, f"{rule} on {device}", now - timedelta(minutes=10), now,
         now - timedelta(minutes=9), inhibited_by)).fetchone()["id"]


@pytest.fixture
def incident(db, registry):
    """A school whose gateway is down (one incident) with two board alerts suppressed behind it,
    and an alert in another city."""
    registry.area()
    registry.area(city="420100", county="420102", names=("湖北省", "武汉市", "江岸区"))
    school = registry.school()
    gateway = registry.device(school, "gateway")
    boards = [registry.device(school) for _ in range(2)]
    root = _alert(db, "gateway_offline", gateway, school, severity="critical")
    for b in boards:
        _alert(db, "device_offline", b, school, inhibited_by=root)
    elsewhere = registry.school(county="420102", city="420100")
    foreign = _alert(db, "device_offline", registry.device(elsewhere), elsewhere, severity="warning")
    registry.user("ops", "county", "421303", role="operations")
    registry.user("viewer", "county", "421303", role="viewer")
    return {"root": root, "foreign": foreign, "school": school}


def test_one_incident_per_root_cause_and_nothing_outside_the_scope(api, incident):
    headers = login(api, "ops")
    listed = api.get("/api/v1/scopes/county/421303/alerts", headers=headers).json()
    assert [a["id"] for a in listed] == [incident["root"]]
    summary = api.get("/api/v1/scopes/county/421303/alerts/summary", headers=headers).json()
    assert summary["open"] == 1 and summary["by_severity"]["critical"] == 1 and summary["inhibited"] == 2
    detail = api.get(f"/api/v1/alerts/{incident['root']}", headers=headers).json()
    assert len(detail["suppressed"]) == 2
    assert api.get(f"/api/v1/alerts/{incident['foreign']}", headers=headers).status_code == 404
    assert api.get("/api/v1/scopes/city/420100/alerts", headers=headers).status_code == 404
    by_school = api.get("/api/v1/scopes/county/421303/alerts/by-school", headers=headers).json()
    assert [(s["school_code"], s["alerts"], s["inhibited"]) for s in by_school] == [(incident["school"], 1, 2)]


def test_acknowledge_work_order_and_response_times(api, db, incident):
    headers = login(api, "ops")
    assert api.post(f"/api/v1/alerts/{incident['root']}/ack", headers=login(api, "viewer")).status_code == 403
    acked = api.post(f"/api/v1/alerts/{incident['root']}/ack", headers=headers)
    assert acked.status_code == 200 and acked.json()["acked_by"] == "ops"
    assert api.post(f"/api/v1/alerts/{incident['root']}/ack", headers=headers).status_code == 409
    order = api.post(f"/api/v1/alerts/{incident['root']}/work-order", json={"assignee": "ops"}, headers=headers)
    assert order.status_code == 201
    order_id = order.json()["id"]
    done = api.patch(f"/api/v1/work-orders/{order_id}", json={"status": "done"}, headers=headers)
    assert done.status_code == 409  # a finished work order needs a resolution
    for step in ({"status": "in_progress"}, {"status": "done", "note": "换了网关电源"}):
        assert api.patch(f"/api/v1/work-orders/{order_id}", json=step, headers=headers).status_code == 200
    orders = api.get("/api/v1/scopes/county/421303/work-orders?format=xlsx", headers=headers)
    assert load_workbook(io.BytesIO(orders.content)).active.max_row == 2
    times = api.get("/api/v1/scopes/county/421303/response-times", headers=headers).json()
    assert times and isinstance(times[0]["mtta_s"], float)  # a number in JSON, not a string
    actions = [r["action"] for r in db.execute("SELECT action FROM audit_log WHERE action <> 'login' ORDER BY id")]
    assert actions == ["alert.ack", "work_order.open", "work_order.update", "work_order.update"]


def test_rounds_and_reports(api, incident):
    headers = login(api, "ops")
    made = api.post("/api/v1/scopes/county/421303/patrol/rounds", headers=headers)
    assert made.status_code == 201
    round_id = made.json()["id"]
    report = api.get(f"/api/v1/patrol/rounds/{round_id}", headers=headers).json()
    assert {f["rule_id"] for f in report["findings"]} >= {"gateway_offline"}
    html = api.get(f"/api/v1/patrol/rounds/{round_id}?format=html", headers=headers)
    assert html.headers["content-type"].startswith("text/html") and "巡检" in html.text
    xlsx = api.get(f"/api/v1/patrol/rounds/{round_id}?format=xlsx", headers=headers)
    assert load_workbook(io.BytesIO(xlsx.content)).active.max_row >= 2
    assert api.get("/api/v1/scopes/county/421303/patrol/rounds", headers=headers).json()[0]["id"] == round_id
    assert api.get("/api/v1/scopes/county/421303/patrol/classrooms", headers=headers).status_code == 200


def test_silences_and_rule_changes_are_checked(api, incident):
    headers = login(api, "ops")
    ends = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    made = api.post("/api/v1/scopes/county/421303/silences", json={"ends_at": ends, "reason": "换交换机"},
                    headers=headers)
    assert made.status_code == 201
    bad = api.post("/api/v1/scopes/county/421303/maintenance",
                   json={"starts_at": ends, "ends_at": ends, "reason": "维护"}, headers=headers)
    assert bad.status_code == 422
    assert api.patch("/api/v1/patrol/rules/device_offline", json={"for_s": 60}, headers=headers).status_code == 403
    assert len(api.get("/api/v1/patrol/rules", headers=headers).json()) >= 10


COMMUNITY = "C42130388"


@pytest.fixture
def community(db, registry):
    """A community of a school in 曾都 and one in 江岸 (another city), a school outside it, a firing alert at
    each school; an operations user and a manager of the community, and a user of another county."""
    registry.area()
    registry.area(city="420100", county="420102", names=("湖北省", "武汉市", "江岸区"))
    schools = {"lead": registry.school(), "member": registry.school(county="420102", city="420100"),
               "outsider": registry.school()}
    db.execute("INSERT INTO community (code, name, kind, lead_school_code, county_code) "
               "VALUES (%s, '跨区教联体', 'collaborative', %s, '421303')", (COMMUNITY, schools["lead"]))
    db.execute("INSERT INTO community_member VALUES (%s, %s, 'lead', NULL), (%s, %s, 'member', NULL)",
               (COMMUNITY, schools["lead"], COMMUNITY, schools["member"]))
    alerts = {name: _alert(db, "device_offline", registry.device(school), school) for name, school in schools.items()}
    registry.user("community-ops", "community", COMMUNITY, role="operations")
    registry.user("community-manager", "community", COMMUNITY, role="manager")
    registry.user("jiangan", "county", "420102", role="admin")
    return {"schools": schools, "alerts": alerts}


def test_a_community_user_sees_the_alerts_of_its_member_schools_only(api, community):
    headers = login(api, "community-ops")
    base = f"/api/v1/scopes/community/{COMMUNITY}"
    mine = {community["alerts"]["lead"], community["alerts"]["member"]}
    assert {a["id"] for a in api.get(f"{base}/alerts", headers=headers).json()} == mine
    assert api.get(f"{base}/alerts/summary", headers=headers).json()["open"] == 2
    by_school = api.get(f"{base}/alerts/by-school", headers=headers).json()
    assert {s["school_code"] for s in by_school} == {community["schools"]["lead"], community["schools"]["member"]}
    assert api.get(f"/api/v1/alerts/{community['alerts']['member']}", headers=headers).status_code == 200
    assert api.get(f"/api/v1/alerts/{community['alerts']['outsider']}", headers=headers).status_code == 404
    times = api.get(f"{base}/response-times", headers=headers).json()
    assert [(t["scope_code"], t["fired"]) for t in times] == [(COMMUNITY, 2)]


def test_a_community_user_silences_plans_maintenance_and_runs_rounds_for_the_community(api, db, community):
    headers = login(api, "community-ops")
    base = f"/api/v1/scopes/community/{COMMUNITY}"
    later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    silence = api.post(f"{base}/silences", json={"ends_at": later, "reason": "联校检修"}, headers=headers)
    assert silence.status_code == 201, silence.text
    window = api.post(f"{base}/maintenance", json={"starts_at": datetime.now(UTC).isoformat(), "ends_at": later,
                                                   "reason": "线路改造"}, headers=headers)
    assert window.status_code == 201, window.text
    override = api.put(f"{base}/patrol/rules/storage_low", json={"min_free_gb": 20},
                       headers=login(api, "community-manager"))
    assert override.status_code == 204, override.text
    made = api.post(f"{base}/patrol/rounds", headers=headers)
    assert made.status_code == 201, made.text
    report = api.get(f"/api/v1/patrol/rounds/{made.json()['id']}", headers=headers).json()
    assert {f["alert_id"] for f in report["findings"]} == {community["alerts"]["lead"], community["alerts"]["member"]}
    assert [r["id"] for r in api.get(f"{base}/patrol/rounds", headers=headers).json()] == [made.json()["id"]]
    stored = [(r["scope_level"], r["scope_code"]) for r in db.execute(
        "SELECT scope_level, scope_code FROM silence UNION ALL SELECT scope_level, scope_code FROM maintenance_window "
        "UNION ALL SELECT scope_level, scope_code FROM patrol_rule_override")]
    assert stored == [("community", COMMUNITY)] * 3


def test_a_user_of_another_scope_finds_no_such_community(api, community):
    headers = login(api, "jiangan")  # an admin of the member school's county, not of the community
    base = f"/api/v1/scopes/community/{COMMUNITY}"
    later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    answers = [api.get(f"{base}/alerts", headers=headers), api.get(f"{base}/alerts/summary", headers=headers),
               api.post(f"{base}/silences", json={"ends_at": later, "reason": "联校检修"}, headers=headers),
               api.post(f"{base}/maintenance", json={"starts_at": datetime.now(UTC).isoformat(), "ends_at": later,
                                                     "reason": "线路改造"}, headers=headers),
               api.post(f"{base}/patrol/rounds", headers=headers),
               api.get(f"{base}/patrol/rounds", headers=headers)]
    assert [r.status_code for r in answers] == [404] * len(answers)


def test_a_work_order_past_its_deadline_is_listed_as_overdue(api, db, registry):
    """The list judges deadlines by the clock when nobody names a time."""
    registry.area()
    school = registry.school()
    registry.user("ops", "county", "421303", role="operations")
    late, on_time, done = (registry.work_order(school, title=t) for t in ("late", "on time", "done late"))
    db.execute("UPDATE work_order SET deadline = now() - interval '1 hour' WHERE id = ANY(%s)", ([late, done],))
    db.execute("UPDATE work_order SET deadline = now() + interval '1 day' WHERE id = %s", (on_time,))
    db.execute("UPDATE work_order SET status = 'done' WHERE id = %s", (done,))
    rows = api.get("/api/v1/scopes/county/421303/work-orders", headers=login(api, "ops")).json()
    assert {r["title"]: r["overdue"] for r in rows} == {"late": True, "on time": False, "done late": False}


def test_an_alerts_sightings_are_what_the_evaluations_saw(api, db, registry):
    """An alert seen again is not written again (sql/037): the API shows when its condition was last
    observed and by how many evaluations, and holds both while it is open but not seen (out of hours)."""
    registry.area()
    school = registry.school()
    gateway, board = registry.device(school, "gateway"), registry.device(school)
    registry.user("ops", "county", "421303", role="operations")
    db.execute("SELECT patrol_seed_default_rules()")
    lesson = datetime(2025, 11, 26, 10, 20, tzinfo=ZoneInfo("Asia/Shanghai"))  # a Wednesday's third period
    for device in (gateway, board):
        registry.device_state(device, online=False, status_time=lesson - timedelta(hours=1),
                              last_seen=lesson - timedelta(hours=1))
    calendar = load_calendar(db)
    for minutes in range(3):
        run_cycle(db, lesson + timedelta(minutes=minutes), calendar)
    stored = db.execute("SELECT rule_id, count, last_seen FROM alert ORDER BY rule_id").fetchall()
    assert [(r["count"], r["last_seen"]) for r in stored] == [(1, lesson)] * 2  # each row written once
    headers = login(api, "ops")

    def sightings() -> dict:
        rows = api.get("/api/v1/scopes/county/421303/alerts?include_inhibited=true", headers=headers).json()
        return {r["rule_id"]: (r["count"], datetime.fromisoformat(r["last_seen"])) for r in rows}

    seen = (3, lesson + timedelta(minutes=2))
    assert sightings() == {"gateway_offline": seen, "device_offline": seen}
    root_id = db.execute("SELECT id FROM alert WHERE rule_id = 'gateway_offline'").fetchone()["id"]
    [grouped] = api.get(f"/api/v1/alerts/{root_id}/grouped", headers=headers).json()
    assert (grouped["rule_id"], grouped["count"]) == ("device_offline", 3)
    detail = api.get(f"/api/v1/alerts/{grouped['id']}", headers=headers).json()
    assert (detail["count"], datetime.fromisoformat(detail["last_seen"])) == seen
    acked = api.post(f"/api/v1/alerts/{root_id}/ack", headers=headers).json()
    assert (acked["state"], acked["count"]) == ("acknowledged", 3)
    for minute in (45, 46):  # the break: device_offline counts in lessons only, gateway_offline all day
        run_cycle(db, lesson.replace(minute=minute), calendar)
    assert sightings() == {"gateway_offline": (5, lesson.replace(minute=46)), "device_offline": seen}
