"""What a long fuzz run of the whole API found, pinned."""

import threading
from datetime import UTC, date, datetime

import psycopg
import pytest
from psycopg.rows import dict_row

from rollups.matching import match_sessions
from tests.fixtures.app import login


@pytest.mark.parametrize("value", ["0", "20261130", "1e9"])
def test_a_number_is_not_a_date(api, registry, value):
    """A query's `day_to=0` was read as 1970-01-01 by lax date parsing and answered 200."""
    registry.area()
    registry.user("city", "city", "421300")
    r = api.get("/api/v1/scopes/city/421300/lessons/sessions", params={"day_to": value}, headers=login(api, "city"))
    assert r.status_code == 422 and "ISO 8601" in r.text


def test_two_rebuilds_of_the_same_sessions_at_once_do_not_collide(database_url, registry, db):
    """The rollups' round and an operator's POST /lessons/match rebuilding the same days at once: the second
    used to insert what the first had inserted (a duplicate key, answered 409)."""
    registry.area()
    main = registry.device(registry.school(), "recorder")
    receiver = registry.device(registry.school(), "board")
    registry.lesson(main, [receiver])
    errors: list[BaseException] = []

    def rebuild() -> None:
        try:
            with psycopg.connect(database_url, row_factory=dict_row) as conn:
                for _ in range(20):
                    match_sessions(conn, date(2026, 11, 2), date(2026, 11, 27), datetime.now(UTC))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=rebuild) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert db.execute("SELECT count(*) AS n FROM lesson_session").fetchone()["n"] > 0
