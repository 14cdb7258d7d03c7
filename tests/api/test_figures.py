"""Figures, rankings and targets on a small hand-built province whose answers are worked out here."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.fixtures.app import login


def _state(registry, device_id: str, *, online: bool, in_use: bool = False, streaming: bool = False,
           last_seen: datetime | None = None, values: dict | None = None) -> None:
    registry.device_state(device_id, online=online, last_seen=last_seen or datetime.now(UTC), in_use=in_use,
                          streaming=streaming, last_values=values or {})


@pytest.fixture
def province(db, registry):
    """Two cities. 随州: 2 schools, 5 boards (3 online, 1 in use), 1 recorder (streaming), 2 gateways.
    武汉: 1 school, 2 boards (0 online), 1 gateway silent for two days."""
    registry.area()
    registry.area(city="420100", county="420102", names=("湖北省", "武汉市", "江岸区"))
    a = registry.school(county="421303", uplink_mbps=1000)
    b = registry.school(county="421303", locale="rural", uplink_mbps=50)
    c = registry.school(county="420102", city="420100", uplink_mbps=1000)
    boards_a = [registry.device(a) for _ in range(3)]
    boards_b = [registry.device(b) for _ in range(2)]
    for i, d in enumerate(boards_a):
        _state(registry, d, online=True, in_use=i == 0)
    _state(registry, boards_b[0], online=True)
    _state(registry, boards_b[1], online=False)
    rec = registry.device(a, "recorder")
    _state(registry, rec, online=True, streaming=True)
    for school, latency, loss in ((a, 10, 0.5), (b, 120, 6.0)):
        gw = registry.device(school, "gateway")
        _state(registry, gw, online=True, values={"latency_ms": latency, "loss_pct": loss})
    for _ in range(2):
        _state(registry, registry.device(c), online=False)
    silent = registry.device(c, "gateway")
    _state(registry, silent, online=False, last_seen=datetime.now(UTC) - timedelta(days=2))
    registry.user("province", "province", "420000")
    registry.user("suizhou", "city", "421300")
    registry.user("zengdu", "county", "421303")
    return {"a": a, "b": b, "c": c}


def test_availability_figures_for_a_scope_and_its_children(api, province):
    keys = "devices,online,online_rate,board_online_rate,boards_in_use_now,recorders_live_now,silent_devices"
    body = api.get(f"/api/v1/scopes/province/420000/figures?keys={keys}", headers=login(api, "province")).json()
    f = {k: v["value"] for k, v in body["figures"].items()}
    # 11 devices: 5+2 boards, 1 recorder, 3 gateways; online: 4 boards + recorder + 2 gateways = 7
    assert f["devices"] == 11 and f["online"] == 7 and f["online_rate"] == round(7 / 11, 4)
    assert f["board_online_rate"] == round(4 / 7, 4)
    assert f["boards_in_use_now"] == 1 and f["recorders_live_now"] == 1 and f["silent_devices"] == 1
    kids = {c["code"]: {k: v["value"] for k, v in c["figures"].items()} for c in body["children"]}
    assert kids["421300"]["online_rate"] == round(7 / 8, 4) and kids["420100"]["online_rate"] == 0.0
    assert kids["420100"]["board_online_rate"] == 0.0 and kids["421300"]["devices"] == 8


def test_network_figures(api, province):
    keys = "schools_gigabit_share,schools_below_100m,network_latency_ms,network_poor_loss_share"
    body = api.get(f"/api/v1/scopes/county/421303/figures?keys={keys}", headers=login(api, "zengdu")).json()
    f = {k: v["value"] for k, v in body["figures"].items()}
    assert f["schools_gigabit_share"] == 0.5 and f["schools_below_100m"] == 1
    assert f["network_latency_ms"] == 65.0 and f["network_poor_loss_share"] == 0.5


def test_ranking_puts_the_worst_child_first_and_exports(api, province):
    headers = login(api, "province")
    body = api.get("/api/v1/scopes/province/420000/ranking?figure=online_rate&order=worst", headers=headers).json()
    assert [i["code"] for i in body["items"]] == ["420100", "421300"]
    best = api.get("/api/v1/scopes/province/420000/ranking?figure=silent_devices&order=worst", headers=headers)
    assert best.json()["items"][0]["code"] == "420100"  # lower is better: the silent city is worst
    csv_text = api.get("/api/v1/scopes/province/420000/ranking?figure=online_rate&format=csv", headers=headers)
    assert csv_text.content.decode("utf-8-sig").splitlines()[1].startswith("1,city,420100")


def test_unknown_figures_and_scopes_are_refused_with_reasons(api, province):
    headers = login(api, "suizhou")
    r = api.get("/api/v1/scopes/city/421300/figures?keys=online_rate,nonsense", headers=headers)
    assert r.status_code == 422 and "nonsense" in r.json()["detail"]
    assert api.get("/api/v1/scopes/city/420100/figures", headers=headers).status_code == 404
    assert api.get("/api/v1/scopes/province/420000/figures", headers=headers).status_code == 404


def test_targets_are_dispatched_down_and_judged(api, province, db):
    province_headers = login(api, "province")
    deadline = (date.today() + timedelta(days=30)).isoformat()
    r = api.post("/api/v1/scopes/province/420000/targets",
                 json={"figure": "online_rate", "comparator": ">=", "value": 0.8, "deadline": deadline},
                 headers=province_headers)
    assert r.status_code == 201, r.text
    # a city manager sees the province's target applied to the city and its county
    headers = login(api, "suizhou")
    body = api.get("/api/v1/scopes/city/421300/figures?keys=online_rate", headers=headers).json()
    target = body["figures"]["online_rate"]["target"]
    assert target["status"] == "met" and target["set_on"]["level"] == "province"  # 7/8 = 0.875 ≥ 0.8
    progress = api.get("/api/v1/scopes/province/420000/targets", headers=province_headers).json()[0]
    league = [(c["code"], c["target"]["status"]) for c in progress["children"]]
    assert league == [("420100", "behind"), ("421300", "met")]
    assert progress["scope_status"]["status"] == "behind" and progress["scope_status"]["gap"] == round(0.8 - 7 / 11, 4)
    # nobody sets their own target; a past deadline turns "behind" into "missed"
    own = api.post("/api/v1/scopes/city/421300/targets", json={"figure": "online_rate", "value": 0.5,
                   "deadline": deadline}, headers=headers)
    assert own.status_code == 403
    past = api.post("/api/v1/scopes/province/420000/targets", json={"figure": "board_online_rate", "value": 0.9,
                    "deadline": "2024-12-31"}, headers=province_headers)
    body = api.get("/api/v1/scopes/province/420000/figures?keys=board_online_rate", headers=province_headers).json()
    assert body["figures"]["board_online_rate"]["target"]["status"] == "missed"
    assert api.delete(f"/api/v1/targets/{past.json()['id']}", headers=headers).status_code == 404
    assert api.delete(f"/api/v1/targets/{past.json()['id']}", headers=province_headers).status_code == 204
    actions = [r["action"] for r in db.execute("SELECT action FROM audit_log WHERE action <> 'login' ORDER BY id")]
    assert actions == ["target.set", "target.set", "target.delete"]


def test_use_figures_and_trends_come_from_the_rollups(api, db, registry):
    from rollups.service import refresh

    registry.area()
    school = registry.school()
    boards = [registry.device(school) for _ in range(2)]
    registry.user("zengdu", "county", "421303")
    local = datetime.now(ZoneInfo("Asia/Shanghai")).replace(second=0, microsecond=0)
    midnight = local.replace(hour=0, minute=0)
    start = max(local - timedelta(minutes=30), midnight)  # keep all of it inside today
    today = local.date()
    school_days = max(1, sum((today - timedelta(days=i)).isoweekday() <= 5 for i in range(7)))
    # board 0 is used for 30 minutes (1,800 s); board 1 is on but never used
    for minute in range(31):
        at = start + timedelta(minutes=minute)
        for i, b in enumerate(boards):
            db.execute("INSERT INTO board_telemetry (device_id, time, seq, power_on, screen_on, active_use_s) "
                       "VALUES (%s, %s, %s, true, true, %s)", (b, at, minute, 5000 + (60 * minute if i == 0 else 0)))
    refresh(db, margin="0 seconds")
    headers = login(api, "zengdu")
    keys = "use_hours_per_board_day,boards_used_today_share,boards_unused_share"
    body = api.get(f"/api/v1/scopes/county/421303/figures?keys={keys}", headers=headers).json()["figures"]
    assert body["boards_used_today_share"]["value"] == 0.5
    assert body["boards_unused_share"]["value"] == 0.5
    use = body["use_hours_per_board_day"]  # 0.5 h of use / (2 boards × school days in the window)
    assert (use["num"], use["den"], use["value"]) == (0.5, 2 * school_days, round(0.5 / (2 * school_days), 4))
    trend = api.get("/api/v1/scopes/county/421303/trend?figure=online_rate&bucket=hour&days=1", headers=headers)
    points = trend.json()["points"]
    assert sum(p["num"] for p in points) == 2 * 31  # 31 online minutes for each board, over one or two hours
    assert all(p["den"] == 2 * 60 for p in points)
    bad = api.get("/api/v1/scopes/county/421303/trend?figure=devices", headers=headers)
    assert bad.status_code == 422 and "no trend" in bad.json()["detail"]


def test_the_catalogue_carries_the_bands_the_bureau_set(api, province, monkeypatch):
    """The cockpit colours rates by the API's settings, not by numbers of its own."""
    from api.metrics.settings import metrics_settings

    monkeypatch.setenv("METRICS_ONLINE_RATE_GOOD", "0.97")
    metrics_settings.cache_clear()
    try:
        figures = {f["key"]: f for f in api.get("/api/v1/figures", headers=login(api, "province")).json()}
        assert figures["online_rate"]["bands"] == {"good": 0.97, "fair": 0.85}
        assert figures["board_online_rate"]["bands"]["good"] == 0.97
        assert figures["devices"]["bands"] is None
        lessons = api.get("/api/v1/scopes/province/420000/lessons/summary", headers=login(api, "province")).json()
        assert lessons["opening_rate_bands"] == {"good": 0.90, "fair": 0.75}
    finally:
        monkeypatch.delenv("METRICS_ONLINE_RATE_GOOD")
        metrics_settings.cache_clear()
