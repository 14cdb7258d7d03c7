"""The cockpit's own login code names the browser, so one browser's failures hold back no one else."""

import pytest

from dashboard import api_client
from tests.fixtures.factories import PASSWORD


@pytest.fixture
def cockpit(api, monkeypatch, cockpit_secret):
    """The cockpit's API client, talking to the test API."""
    monkeypatch.setattr(api_client, "_client", lambda: api)
    return api_client


def test_wrong_passwords_typed_into_the_cockpit_lock_out_nobody_else(cockpit, registry, db):
    registry.area()
    registry.user("admin", "province", "420000", role="admin")
    registry.user("zengdu", "county", "421303")
    statuses = []
    for _ in range(10):
        with pytest.raises(api_client.ApiError) as refused:
            cockpit.login("zengdu", "wrong", "203.0.113.7")
        statuses.append(refused.value.status)
    assert statuses == [401] * 5 + [423] * 5
    assert cockpit.login("admin", PASSWORD, "198.51.100.20")
    with pytest.raises(api_client.ApiError) as throttled:
        cockpit.login("admin", PASSWORD, "203.0.113.7")
    assert throttled.value.status == 429
    assert {r["client_ip"] for r in db.execute("SELECT DISTINCT client_ip FROM login_attempt")} == {
        "203.0.113.7", "198.51.100.20"}
