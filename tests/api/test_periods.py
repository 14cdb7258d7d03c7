"""Figures over a period (period=, from=/to=): a small province with hand-written daily rollups, and every
figure of the catalogue checked against what this module works out from those rows by itself — for the
scope and each child, the previous period and the change, and children adding up to their parent."""

import calendar
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import pytest

from api.metrics.catalogue import FIGURES
from rollups.service import recount_counties
from tests.fixtures.app import login
from tests.fixtures.factories import LOCAL

ALL = ",".join(FIGURES)
POOR_LOSS = 5.0  # METRICS_POOR_LOSS_PCT


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(), LOCAL)


@dataclass
class Device:
    id: str
    school: str
    kind: str
    since: datetime  # in service from (installed_on at local midnight)


@dataclass
class School:
    code: str
    city: str
    county: str
    uplink: int


@dataclass
class Province:
    """What the fixture wrote: the registry, and one daily rollup row per (device, day)."""

    schools: dict[str, School]
    devices: list[Device]
    daily: dict[tuple[str, date], dict]
    days: dict[str, date]


# What each device reports on a day with data, before that day's factor: online minutes (one reading a
# minute), active use, powered-on, recording and streaming minutes, and a gateway's network figures.
BASE = {
    "A1": {"online": 600, "use_s": 7200, "on_min": 500},
    "A2": {"online": 300, "use_s": 0, "on_min": 200},
    "AR": {"online": 1440, "rec": 120, "stream": 60},
    "AG": {"online": 1440, "util": 0.5, "latency": 10.0, "loss": 1.0},
    "BG": {"online": 1000, "util": 0.9, "latency": 100.0, "loss": 8.0},
    "C1": {"online": 720, "use_s": 3600, "on_min": 500},
    "C2": {"online": 1440, "use_s": 1800, "on_min": 400},  # installed on the 11th of last month
}  # B1, a board at school b, never reports. Powered-on minutes stay under 600 a board: the cap never bites.


@pytest.fixture
def province(db, registry) -> Province:
    """Two cities: 随州 (county 曾都: schools a, b) and 武汉 (county 江岸: school c); eight devices, with
    daily rows on six days (none today: a running day's rows would outrun its elapsed minutes).
    The rows are written into device_daily by hand, which only plain PostgreSQL allows: with
    TimescaleDB it is a view over continuous aggregates of raw readings."""
    if db.execute("SELECT relkind = 'v' AS view FROM pg_class WHERE oid = 'device_daily'::regclass").fetchone()["view"]:
        pytest.skip("hand-written device rollups need plain tables (TimescaleDB: a view over raw readings)")
    registry.area()
    registry.area(city="420100", county="420102", names=("湖北省", "武汉市", "江岸区"))
    a = registry.school(county="421303", uplink_mbps=1000)
    b = registry.school(county="421303", locale="rural", uplink_mbps=50)
    c = registry.school(county="420102", city="420100", uplink_mbps=1000)
    schools = {a: School(a, "421300", "421303", 1000), b: School(b, "421300", "421303", 50),
               c: School(c, "420100", "420102", 1000)}
    today = datetime.now(LOCAL).date()
    first_of_month = today.replace(day=1)
    last_month = (first_of_month - timedelta(days=1)).replace(day=1)
    before = (last_month - timedelta(days=1)).replace(day=1)
    days = {"yesterday": today - timedelta(days=1), "day_before": today - timedelta(days=2),
            "last_5": last_month.replace(day=5), "last_20": last_month.replace(day=20),
            "before_25": before.replace(day=25), "this_1": first_of_month}
    factor = {"yesterday": 1.0, "day_before": 0.5, "last_5": 0.8, "last_20": 1.0, "before_25": 0.25, "this_1": 0.6}
    installed = midnight(date(2020, 1, 1))
    c2_since = midnight(last_month.replace(day=11))
    ids = {"A1": (a, "board"), "A2": (a, "board"), "AR": (a, "recorder"), "AG": (a, "gateway"),
           "B1": (b, "board"), "BG": (b, "gateway"), "C1": (c, "board"), "C2": (c, "board")}
    devices = []
    for name, (school, kind) in ids.items():
        device_id = registry.device(school, kind, device_id=f"{name}-{school}")
        since = c2_since if name == "C2" else installed
        db.execute("UPDATE device SET installed_on = %s WHERE id = %s", (since.date(), device_id))
        devices.append(Device(device_id, school, kind, since.astimezone(UTC)))
    daily: dict[tuple[str, date], dict] = {}
    for label, day in days.items():  # a day named twice (yesterday is the 1st…) keeps its last factor
        if day >= today:
            continue
        for d in devices:
            name = d.id.split("-")[0]
            if name not in BASE or midnight(day) < d.since:
                continue
            row = {k: (v if k in ("util", "latency", "loss") else int(v * factor[label]))
                   for k, v in BASE[name].items()}
            daily[(d.id, day)] = row
    _write(db, devices, daily)
    registry.user("province", "province", "420000")
    registry.user("suizhou", "city", "421300")
    registry.user("zengdu", "county", "421303")
    return Province(schools, devices, daily, days)


def _write(db, devices: list[Device], daily: dict) -> None:
    """device_daily rows as written, and school_daily rows as their sums per school, kind and day."""
    by_id = {d.id: d for d in devices}
    schools: dict[tuple, list[dict]] = defaultdict(list)
    for (device_id, day), r in daily.items():
        d = by_id[device_id]
        db.execute(
            "INSERT INTO device_daily (bucket, device_id, kind, readings, online_minutes, powered_on_minutes, "
            "active_use_s, recording_minutes, streaming_minutes, utilisation_max, latency_avg, loss_avg) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (midnight(day), device_id, d.kind, r["online"], r["online"], r.get("on_min"), r.get("use_s"),
             r.get("rec"), r.get("stream"), r.get("util"), r.get("latency"), r.get("loss")))
        schools[(d.school, d.kind, day)].append(r)
    def total(rows: list[dict], k: str) -> int | None:
        return sum(r[k] for r in rows) if any(k in r for r in rows) else None

    for (school, kind, day), rows in schools.items():
        db.execute(
            "INSERT INTO school_daily (bucket, school_code, kind, devices_reporting, devices_active, "
            "online_minutes, powered_on_minutes, active_use_s, recording_minutes, streaming_minutes, "
            "utilisation_max, latency_avg, loss_avg) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (midnight(day), school, kind, len(rows), sum(r.get("use_s", 0) > 0 for r in rows), total(rows, "online"),
             total(rows, "on_min"), total(rows, "use_s"), total(rows, "rec"), total(rows, "stream"),
             max((r["util"] for r in rows if "util" in r), default=None),
             rows[0].get("latency"), rows[0].get("loss")))  # one gateway a school
    with db.cursor() as cur:  # and the counties' running totals, as the rollups keep them
        recount_counties(cur, "Asia/Shanghai", everything=True)


# -- what the figures should be, worked out here from the rows above -------------------------------------

@dataclass
class Asked:
    """A period as the API answered it: its days and instants."""

    first: date
    last: date
    start: datetime
    until: datetime
    running: bool

    @classmethod
    def of(cls, block: dict) -> "Asked":
        return cls(date.fromisoformat(block["from"]), date.fromisoformat(block["to"]),
                   datetime.fromisoformat(block["start"]), datetime.fromisoformat(block["until"]), block["running"])

    def school_days(self) -> int:
        last = self.until.astimezone(LOCAL).date() if self.running else self.last
        last = min(last, self.last)
        return sum((self.first + timedelta(days=i)).isoweekday() <= 5 for i in range((last - self.first).days + 1))


def expected(p: Province, asked: Asked, where) -> dict[str, tuple]:
    """(numerator, denominator) of every figure over a period, for the schools `where` accepts."""
    devices = [d for d in p.devices if where(p.schools[d.school]) and d.since < asked.until]
    minutes = {d.id: (asked.until - max(asked.start, d.since)).total_seconds() / 60 for d in devices}
    rows = {d.id: [r for (i, day), r in p.daily.items() if i == d.id and asked.first <= day <= asked.last]
            for d in devices}
    total = lambda d, k: sum(r.get(k, 0) for r in rows[d.id])  # noqa: E731
    of = lambda kind: [d for d in devices if d.kind == kind]  # noqa: E731
    boards, recorders, gateways = of("board"), of("recorder"), of("gateway")
    period_minutes = (asked.until - asked.start).total_seconds() / 60
    online = sum(total(d, "online") for d in devices)
    school_days = asked.school_days()

    def rate(kind_devices):
        return (sum(total(d, "online") for d in kind_devices), sum(minutes[d.id] for d in kind_devices))

    gateway_rows = [(r, d.school) for d in gateways for r in rows[d.id]]
    loss = defaultdict(lambda: [0.0, 0.0])
    for r, school in gateway_rows:
        loss[school][0] += r["loss"] * r["online"]
        loss[school][1] += r["online"]
    schools = [s for s in p.schools.values() if where(s)]
    used = sum(total(d, "use_s") > 0 for d in boards)
    return {
        "devices": (len(devices), None),
        "online": (online / period_minutes if period_minutes else None, None),
        "online_rate": rate(devices), "board_online_rate": rate(boards),
        "recorder_online_rate": rate(recorders), "gateway_online_rate": rate(gateways),
        "silent_devices": (sum(total(d, "online") == 0 for d in devices), None),
        "boards_in_use_now": (used, None),
        "recorders_live_now": (sum(total(d, "stream") > 0 for d in recorders), None),
        "recorders_recording_now": (sum(total(d, "rec") > 0 for d in recorders), None),
        "use_hours_per_board_day": (sum(total(d, "use_s") for d in boards) / 3600, len(boards) * school_days),
        "boards_used_today_share": (used, len(boards)),
        "boards_unused_share": (len(boards) - used, len(boards)),
        "powered_on_rate_school_hours": (sum(total(d, "on_min") for d in boards), len(boards) * 600 * school_days),
        "recorded_hours_7d": (sum(total(d, "rec") for d in recorders) / 60 if recorders else None, None),
        "streamed_hours_7d": (sum(total(d, "stream") for d in recorders) / 60 if recorders else None, None),
        "schools_gigabit_share": (sum(s.uplink >= 1000 for s in schools), len(schools)),
        "schools_below_100m": (sum(s.uplink < 100 for s in schools), None),
        "network_latency_ms": (sum(r["latency"] * r["online"] for r, _ in gateway_rows),
                               sum(r["online"] for r, _ in gateway_rows)),
        "network_poor_loss_share": (sum(w / n >= POOR_LOSS for w, n in loss.values() if n),
                                    sum(n > 0 for _, n in loss.values())),
        "peak_utilisation_today": (max((r["util"] for r, _ in gateway_rows), default=None), None),
    }


def value_of(key: str, num, den) -> float | None:
    if FIGURES[key].aggregation == "ratio":
        return round(num / den, 4) if num is not None and den else None
    return None if num is None else round(num, 4)


def check(answer: dict, p: Province, asked: Asked, before: Asked, where) -> None:
    """Every figure of one scope's answer: value, previous and change, against the worked-out numbers."""
    now, then = expected(p, asked, where), expected(p, before, where)
    for key, got in answer.items():
        value, previous = value_of(key, *now[key]), value_of(key, *then[key])
        assert got["value"] == pytest.approx(value, abs=1e-4), (key, got, now[key])
        assert got["previous"] == pytest.approx(previous, abs=1e-4), (key, got, then[key])
        change = None if value is None or previous is None else value - previous
        assert got["change"] == pytest.approx(change, abs=2e-4), (key, got)


def ask(api, headers, path: str, **params) -> dict:
    r = api.get(f"/api/v1/scopes/{path}/figures", params={"keys": ALL, **params}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


SCOPES = {  # path, user, the schools of the scope, the schools of each child
    "province": ("province/420000", "province", lambda s: True, lambda code: lambda s: s.city == code),
    "city": ("city/421300", "suizhou", lambda s: s.city == "421300", lambda code: lambda s: s.county == code),
    "county": ("county/421303", "zengdu", lambda s: s.county == "421303", lambda code: lambda s: s.code == code),
}


@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("period", ["yesterday", "this_month", "last_month", "custom"])
def test_every_figure_over_a_period_with_the_previous_one(api, province, period, scope):
    path, user, mine, child = SCOPES[scope]
    params = ({"from": province.days["last_5"].isoformat(), "to": province.days["last_20"].isoformat()}
              if period == "custom" else {"period": period})
    body = ask(api, login(api, user), path, **params)
    asked, before = Asked.of(body["period"]), Asked.of(body["period"]["previous"])
    assert body["period"]["label"] == period and body["as_of"] == body["period"]["until"]
    check(body["figures"], province, asked, before, mine)
    assert body["children"]
    for kid in body["children"]:
        check(kid["figures"], province, asked, before, child(kid["code"]))


def test_the_periods_asked_are_the_days_expected(api, province):
    headers = login(api, "province")
    today = datetime.now(LOCAL).date()
    yesterday = ask(api, headers, "province/420000", period="yesterday")["period"]
    assert (yesterday["from"], yesterday["to"], yesterday["running"]) == ((today - timedelta(days=1)).isoformat(),) * 2 \
        + (False,)
    assert yesterday["previous"]["from"] == yesterday["previous"]["to"] == (today - timedelta(days=2)).isoformat()
    month = ask(api, headers, "province/420000", period="this_month")["period"]
    last = calendar.monthrange(today.year, today.month)[1]
    assert (month["from"], month["to"], month["running"]) == (today.replace(day=1).isoformat(),
                                                               today.replace(day=last).isoformat(), True)
    assert month["previous"]["label"] == "last_month" and month["previous"]["to"] == (
        today.replace(day=1) - timedelta(days=1)).isoformat()
    custom = ask(api, headers, "province/420000", **{"from": province.days["last_5"].isoformat(),
                                                     "to": province.days["last_20"].isoformat()})["period"]
    assert custom["days"] == 16 and custom["previous"]["days"] == 16
    assert custom["previous"]["to"] == (province.days["last_5"] - timedelta(days=1)).isoformat()


def test_yesterday_worked_out_by_hand(api, province):
    """The same answer, spelled out: nine devices in service all day, online for the minutes in BASE."""
    body = ask(api, login(api, "province"), "province/420000", period="yesterday")
    f = body["figures"]
    online = 600 + 300 + 1440 + 1440 + 1000 + 720 + 1440  # A1 A2 AR AG BG C1 C2; B1 silent
    before = int(600 * .5) + int(300 * .5) + int(1440 * .5) * 3 + int(1000 * .5) + int(720 * .5)
    if province.days["yesterday"] == province.days["this_1"]:  # the 1st keeps the factor of this_1
        online = sum(int(v * .6) for v in (600, 300, 1440, 1440, 1000, 720, 1440))
    if province.days["day_before"] in (province.days["last_20"], province.days["this_1"]):
        pytest.skip("the day before yesterday carries another factor today")
    assert f["devices"]["value"] == 8 and f["online_rate"]["den"] == 8 * 1440
    assert f["online_rate"]["value"] == round(online / (8 * 1440), 4)
    assert f["online_rate"]["previous"] == round(before / (8 * 1440), 4)
    assert f["online_rate"]["change"] == round(round(online / (8 * 1440), 4) - round(before / (8 * 1440), 4), 4)
    assert f["online"]["value"] == round(online / 1440, 4)  # mean devices online over the day
    assert f["silent_devices"]["value"] == 1 and f["recorders_live_now"]["value"] == 1


@pytest.mark.parametrize("period", ["yesterday", "this_month", "last_month"])
def test_children_add_up_to_their_parent(api, province, period):
    body = ask(api, login(api, "province"), "province/420000", period=period)
    for key, f in FIGURES.items():
        parent = body["figures"][key]
        kids = [c["figures"][key] for c in body["children"]]
        for num, den in (("num", "den"), ("previous_num", "previous_den")):
            values = [k[num] for k in kids if k[num] is not None]
            if f.aggregation == "max":
                assert parent[num] == (max(values) if values else None), key
                continue
            assert parent[num] == pytest.approx(sum(values) if values else None), key
            if f.aggregation == "ratio":
                assert parent[den] == pytest.approx(sum(k[den] for k in kids if k[den] is not None)), key


def test_a_running_period_runs_up_to_the_last_rollup(api, province, db):
    """this_month while it runs: in-service device-minutes up to the rollups' watermark, not past it."""
    upto = max(datetime.now(UTC) - timedelta(minutes=20), midnight(datetime.now(LOCAL).date()).astimezone(UTC))
    db.execute("INSERT INTO rollup_watermark (name, received_upto) VALUES ('telemetry', %s)", (upto,))
    body = ask(api, login(api, "province"), "province/420000", period="this_month", keys="online_rate,devices")
    until = datetime.fromisoformat(body["period"]["until"])
    assert until == upto and body["period"]["running"]
    start = datetime.fromisoformat(body["period"]["start"])
    in_service = 8 * (until - start).total_seconds() / 60  # C2 came into service last month
    assert body["figures"]["online_rate"]["den"] == pytest.approx(in_service)
    assert body["figures"]["online_rate"]["previous_den"] == pytest.approx(
        7 * 1440 * int(body["period"]["previous"]["days"])
        + (datetime.fromisoformat(body["period"]["previous"]["end"]) - province.devices[-1].since).total_seconds() / 60)


def test_today_from_raw_telemetry_agrees_with_plain_sql(api, db, registry):
    """Raw readings → rollups.service.refresh → today's online rate, against SQL over the raw rows."""
    from rollups.service import refresh

    registry.area()
    school = registry.school()
    boards = [registry.device(school) for _ in range(2)]
    db.execute("UPDATE device SET installed_on = '2020-01-01'")
    registry.user("zengdu", "county", "421303")
    local = datetime.now(LOCAL).replace(second=0, microsecond=0)
    start = max(local - timedelta(minutes=40), local.replace(hour=0, minute=0))
    for minute in range(41):
        at = start + timedelta(minutes=minute)
        for i, b in enumerate(boards):
            if at < local and (i == 0 or minute % 3 == 0):
                db.execute("INSERT INTO board_telemetry (device_id, time, seq, power_on, screen_on, active_use_s) "
                           "VALUES (%s, %s, %s, true, true, %s)", (b, at, minute, 100 + 30 * minute))
    refresh(db, margin="0 seconds")
    body = ask(api, login(api, "zengdu"), "county/421303", period="today", keys="online_rate,online,devices")
    midnight_utc = midnight(local.date()).astimezone(UTC)
    raw = db.execute("SELECT count(DISTINCT (device_id, date_trunc('minute', time))) AS n FROM board_telemetry "
                     "WHERE time >= %s", (midnight_utc,)).fetchone()["n"]
    upto = db.execute("SELECT received_upto FROM rollup_watermark").fetchone()["received_upto"]
    f = body["figures"]["online_rate"]
    assert datetime.fromisoformat(body["period"]["until"]) == upto
    assert f["num"] == raw and f["den"] == pytest.approx(2 * (upto - midnight_utc).total_seconds() / 60)
    assert f["value"] == round(raw / f["den"], 4) and body["figures"]["devices"]["value"] == 2


def test_rankings_carry_the_previous_value_and_export_it(api, province):
    headers = login(api, "province")
    body = api.get("/api/v1/scopes/province/420000/ranking", params={"figure": "online_rate", "period": "yesterday"},
                   headers=headers).json()
    figures = ask(api, headers, "province/420000", period="yesterday", keys="online_rate")
    kids = {c["code"]: c["figures"]["online_rate"] for c in figures["children"]}
    assert body["period"]["label"] == "yesterday"
    for item in body["items"]:
        assert (item["value"], item["previous"], item["change"]) == tuple(
            kids[item["code"]][k] for k in ("value", "previous", "change"))
    csv_text = api.get("/api/v1/scopes/province/420000/ranking", params={
        "figure": "online_rate", "period": "yesterday", "format": "csv"}, headers=headers).content.decode("utf-8-sig")
    assert csv_text.splitlines()[0] == "rank,level,code,name,value,previous,change,target_status"


def test_a_trend_over_a_period_agrees_with_the_figure_of_each_day(api, province):
    headers = login(api, "province")
    first, last = province.days["last_5"], province.days["last_20"]
    trend = api.get("/api/v1/scopes/province/420000/trend", params={
        "figure": "online_rate", "bucket": "day", "from": first.isoformat(), "to": last.isoformat()},
        headers=headers).json()
    assert trend["period"]["from"] == first.isoformat()
    points = {datetime.fromisoformat(p["bucket"]).astimezone(LOCAL).date(): p for p in trend["points"]}
    # every day of the range is a point, those without rollups too (nothing online: 0 of the devices' minutes)
    assert set(points) == {first + timedelta(days=i) for i in range((last - first).days + 1)}
    assert points[first + timedelta(days=1)]["value"] == 0.0
    for day, point in points.items():
        figure = ask(api, headers, "province/420000", **{"from": day.isoformat(), "to": day.isoformat()},
                     keys="online_rate")["figures"]["online_rate"]
        assert (point["num"], point["den"], point["value"]) == (figure["num"], figure["den"], figure["value"])


def test_without_a_period_the_answers_are_what_they_were(api, province):
    headers = login(api, "province")
    body = ask(api, headers, "province/420000")
    assert "period" not in body
    assert all(set(f) == {"value", "num", "den", "target"} for f in body["figures"].values())
    assert all(set(f) == {"value", "num", "den", "target"} for c in body["children"] for f in c["figures"].values())
    assert ask(api, headers, "province/420000", period="now")["figures"] == body["figures"]
    ranking = api.get("/api/v1/scopes/province/420000/ranking", headers=headers).json()
    assert "period" not in ranking and all("previous" not in i for i in ranking["items"])
    trend = api.get("/api/v1/scopes/province/420000/trend", headers=headers).json()
    assert "period" not in trend


@pytest.mark.parametrize(("params", "reason"), [
    ({"period": "last_year"}, "Input should be 'now'"),
    ({"period": "yesterday", "from": "2024-03-01"}, "either period or from/to"),
    ({"to": "2024-03-01"}, "to needs a from"),
    ({"from": "2024-03-10", "to": "2024-03-01"}, "must not be after to"),
    ({"from": "2999-01-01"}, "must not be after today"),
    ({"from": "2023-01-01", "to": "2024-03-01"}, "at most 400"),
    ({"from": "2024-02-30"}, "date"),
    ({"from": "0001-01-01"}, "1900"),
])
@pytest.mark.parametrize("route", ["figures", "ranking", "trend"])
def test_periods_that_cannot_be_answered_are_refused_with_the_reason(api, province, params, reason, route):
    r = api.get(f"/api/v1/scopes/province/420000/{route}", params=params, headers=login(api, "province"))
    assert r.status_code == 422, r.text
    body = r.json()
    assert reason in body["detail"] + " ".join(e["msg"] for e in body.get("errors") or [])
