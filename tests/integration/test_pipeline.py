"""The walking skeleton end to end: device -> broker -> ingest -> database -> API."""

from datetime import UTC, datetime, timedelta

from core.contract import Channel
from tests.fixtures.app import login
from tests.fixtures.devices import board_reading, gateway_reading, wait_for


def _online_by_sql(db, county: str) -> int:
    row = db.execute(
        "SELECT count(*) AS n FROM device_state st JOIN device d ON d.id = st.device_id "
        "JOIN school s ON s.code = d.school_code WHERE st.online AND s.county_code = %s", (county,)).fetchone()
    return row["n"]


def test_published_readings_reach_the_api_and_agree_with_sql(db, registry, api, start_ingest, device):
    registry.area()
    urban = registry.school(locale="urban")
    rural = registry.school(locale="rural")
    boards = [registry.device(urban) for _ in range(3)] + [registry.device(rural)]
    gateway = registry.device(rural, "gateway")
    registry.user("city-manager", "city", "421300")
    start_ingest()

    for device_id in boards[:2] + [gateway]:
        d = device(device_id)
        d.send(Channel.TELEMETRY, gateway_reading() if device_id == gateway else board_reading())

    wait_for(lambda: _online_by_sql(db, "421303") == 3)
    headers = login(api, "city-manager")
    body = api.get("/api/v1/scopes/county/421303/overview", headers=headers).json()

    assert body["availability"]["devices"] == 5
    assert body["availability"]["online"] == 3 == _online_by_sql(db, "421303")
    assert body["availability"]["online_rate"] == 0.6
    by_kind = {k["kind"]: k for k in body["availability"]["by_kind"]}
    assert (by_kind["board"]["devices"], by_kind["board"]["online"]) == (4, 2)
    assert (by_kind["gateway"]["devices"], by_kind["gateway"]["online"]) == (1, 1)
    children = {c["code"]: c["availability"] for c in body["children"]}
    assert (children[urban]["devices"], children[urban]["online"]) == (3, 2)
    assert (children[rural]["devices"], children[rural]["online"]) == (2, 1)
    city = api.get("/api/v1/scopes/city/421300/overview", headers=headers).json()
    assert city["children"][0]["availability"]["online"] == 3


def test_a_cut_connection_is_offline_within_seconds(db, registry, start_ingest, device):
    registry.area()
    board = registry.device(registry.school())
    start_ingest()
    d = device(board)
    d.send(Channel.TELEMETRY, board_reading())
    online = "SELECT online FROM device_state WHERE device_id = %s"
    wait_for(lambda: (db.execute(online, (board,)).fetchone() or {}).get("online") is True)
    d.cut()
    # keepalive 5 s: the broker notices at once on a closed socket, at worst in 1.5 keepalives
    wait_for(lambda: db.execute(online, (board,)).fetchone()["online"] is False, timeout=10)
    reasons = [r["reason"] for r in db.execute(
        "SELECT reason FROM device_status_change WHERE device_id = %s ORDER BY time", (board,))]
    assert reasons[-1] == "will"


def test_wrong_device_clocks_are_flagged_or_kept_aside_through_the_whole_path(db, registry, start_ingest, device):
    registry.area()
    board = registry.device(registry.school())
    start_ingest()
    d = device(board)
    now = datetime.now(UTC)
    clocks = {1: now, 2: now + timedelta(minutes=20), 3: now - timedelta(hours=3),
              4: now + timedelta(days=2), 5: now - timedelta(days=30)}
    for seq, ts in clocks.items():
        d.send(Channel.TELEMETRY, board_reading(seq, ts=ts))
    wait_for(lambda: db.execute("SELECT (SELECT count(*) FROM board_telemetry) + (SELECT count(*) FROM dead_letter) "
                                "AS n").fetchone()["n"] == 5)
    stored = {r["seq"]: r["clock_skewed"] for r in db.execute(
        "SELECT seq, clock_skewed FROM board_telemetry WHERE device_id = %s", (board,))}
    assert stored == {1: False, 2: True, 3: False}  # fine, ahead (flagged), late after an outage (normal)
    aside = [r["reason"] for r in db.execute("SELECT reason FROM dead_letter WHERE device_id = %s", (board,))]
    assert len(aside) == 2 and all("too far" in r for r in aside)
    last_seen = db.execute("SELECT last_seen FROM device_state WHERE device_id = %s", (board,)).fetchone()["last_seen"]
    assert last_seen < now + timedelta(minutes=1), "a fast clock must not push the device's last-seen into the future"
