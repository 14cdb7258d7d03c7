"""What an independent fuzzing run found reaching the database as 500s, each now a 4xx with a reason.

Every input that reaches PostgreSQL is checked first: no U+0000 in any string (nested in free-form
JSON too), numbers finite and in range, dates in range and in order, references that exist. What
still slips through is answered 409/422 by the last line of defence, and logged as the gap it is.
"""

import logging
from datetime import UTC, datetime, timedelta

import pytest

from api.patrol import router as patrol_router
from tests.fixtures.app import SEEDED_BOARD, login, seed_one_of_everything

LATER = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
NOW = datetime.now(UTC).isoformat()
SILENCES = "/api/v1/scopes/county/421303/silences"
TARGETS = "/api/v1/scopes/city/421300/targets"
ROW = {"id": "L1", "kind": "master", "subject": "音乐", "main_device_id": "R4213030001-002", "weekday": 1,
       "starts_at": "08:00", "ends_at": "08:45", "valid_from": "2025-09-01", "valid_until": "2026-01-31",
       "receivers": "B4213030001-001"}

# (name, method, path, request keyword arguments, status, where the reason points or what it says)
REFUSED = [
    ("silence ending before it starts", "POST", SILENCES,
     {"json": {"starts_at": LATER, "ends_at": NOW, "reason": "维护"}}, 422, "ends_at must be after starts_at"),
    ("silence ending in the past", "POST", SILENCES,
     {"json": {"ends_at": "2001-01-01T00:00:00Z", "reason": "维护"}}, 422, "ends_at must be in the future"),
    ("silence for an unknown rule", "POST", SILENCES,
     {"json": {"ends_at": LATER, "reason": "维护", "rule_id": "no_such_rule"}}, 422, "no patrol rule"),
    ("silence for an empty rule id", "POST", SILENCES,
     {"json": {"ends_at": LATER, "reason": "维护", "rule_id": ""}}, 422, "rule_id"),
    ("silence with NUL in its reason", "POST", SILENCES,
     {"json": {"ends_at": LATER, "reason": "维\x00护"}}, 422, "reason"),
    ("silence in the year 1", "POST", SILENCES,
     {"json": {"ends_at": "0001-01-01T00:00:00+05:00", "reason": "维护"}}, 422, "ends_at"),
    ("NUL in command params", "POST", f"/api/v1/devices/{SEEDED_BOARD}/commands",
     {"json": {"name": "notice", "params": {"text": "a\x00b"}}}, 422, "params"),
    ("NUL deep in command params", "POST", "/api/v1/scopes/county/421303/commands",
     {"json": {"kind": "board", "name": "notice", "params": {"a": [{"b": ["ok", "\x00"]}]}}}, 422, "a[0].b[1]"),
    ("NUL in a key of rule params", "PATCH", "/api/v1/patrol/rules/storage_low",
     {"json": {"params": {"min\x00free": 10}}}, 422, "key"),
    ("NUL in rule override params", "PUT", "/api/v1/scopes/county/421303/patrol/rules/storage_low",
     {"json": {"min_free_gb": {"x": "\x00"}}}, 422, "body"),
    ("a rule's for_s given as text", "PATCH", "/api/v1/patrol/rules/storage_low",
     {"json": {"for_s": "60"}}, 422, "for_s"),
    ("NUL in a target's note", "POST", TARGETS,
     {"json": {"figure": "online_rate", "value": 0.9, "deadline": "2030-01-01", "note": "\x00"}}, 422, "note"),
    ("NaN as a target's value", "POST", TARGETS,
     {"content": '{"figure": "online_rate", "value": NaN, "deadline": "2030-01-01"}',
      "headers": {"Content-Type": "application/json"}}, 422, "value"),
    ("an infinite target value", "POST", TARGETS,
     {"content": '{"figure": "online_rate", "value": 1e999, "deadline": "2030-01-01"}',
      "headers": {"Content-Type": "application/json"}}, 422, "value"),
    ("an unknown figure", "POST", TARGETS,
     {"json": {"figure": "no_such_figure", "value": 1, "deadline": "2030-01-01"}}, 422, "figure"),
    ("NUL in the device search", "GET", "/api/v1/scopes/county/421303/devices", {"params": {"search": "B\x00"}},
     422, "search"),
    ("NUL in the alert rule filter", "GET", "/api/v1/scopes/county/421303/alerts", {"params": {"rule": "\x00"}},
     422, "rule"),
    ("an unknown work order status", "GET", "/api/v1/scopes/county/421303/work-orders",
     {"params": {"status": "lost\x00"}}, 422, "status"),
    ("NUL in a work order's title", "POST", "/api/v1/alerts/1/work-order", {"json": {"title": "\x00"}}, 422,
     "title"),
    ("a work order deadline given as a number", "POST", "/api/v1/alerts/1/work-order", {"json": {"deadline": 0}},
     422, "deadline"),
    ("a week in the year 1", "GET", "/api/v1/scopes/county/421303/lessons/summary", {"params": {"week": "0001-W01"}},
     422, "week"),
    ("sessions up to the year 1", "GET", "/api/v1/scopes/county/421303/lessons/sessions",
     {"params": {"day_to": "0001-01-03"}}, 422, "day_to"),
    ("a timetable with NUL in a subject", "POST", "/api/v1/lessons/timetable", {"json": [{**ROW, "subject": "\x00"}]},
     422, "subject"),
    ("a timetable time with an offset", "POST", "/api/v1/lessons/timetable",
     {"json": [{**ROW, "starts_at": "10:00+00:00", "ends_at": "09:00-02:00"}]}, 422, "starts_at"),
]


@pytest.fixture
def admin(api, db, registry):
    seed_one_of_everything(db, registry)
    registry.user("admin", "province", "420000", role="admin")
    return login(api, "admin")


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "reason"),
                         [pytest.param(*case[1:], id=case[0]) for case in REFUSED])
def test_input_the_database_cannot_store_is_refused_with_a_reason(api, admin, method, path, kwargs, status, reason):
    headers = {**admin, **kwargs.pop("headers", {})}
    r = api.request(method, path, headers=headers, **kwargs)
    assert r.status_code == status, r.text
    body = r.json()
    assert reason in r.text, body
    assert isinstance(body["detail"], str)
    assert api.get("/api/v1/auth/me", headers=admin).status_code == 200  # the connection is fine after it


def test_a_refusal_that_reaches_the_database_is_a_4xx_and_logged(api, admin, monkeypatch, caplog):
    monkeypatch.setattr(patrol_router, "_known_rule", lambda *_: None)  # open a validation gap on purpose
    with caplog.at_level(logging.ERROR, logger="api.errors"):
        r = api.post(SILENCES, json={"ends_at": LATER, "reason": "维护", "rule_id": "no_such_rule"}, headers=admin)
    assert r.status_code == 422, r.text
    assert "does not exist" in r.json()["detail"] and "silence_rule_id_fkey" in r.json()["detail"]
    assert any("validation should have caught it" in rec.getMessage() and rec.exc_info for rec in caplog.records)
    assert 'api_database_refusals_total{error="ForeignKeyViolation"' in api.get("/metrics").text
    assert api.post(SILENCES, json={"ends_at": LATER, "reason": "维护"}, headers=admin).status_code == 201
