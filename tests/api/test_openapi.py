"""The OpenAPI document describes what the API really answers: error bodies and file media types."""

import pytest

from api.errors import ImportProblem, Problem
from api.main import create_app
from tests.fixtures.app import login, seed_one_of_everything

DOCUMENT = create_app().openapi()
OPERATIONS = [(path, method, op) for path, ops in DOCUMENT["paths"].items() for method, op in ops.items()]
PROBLEM_REFS = {"#/components/schemas/Problem", "#/components/schemas/ImportProblem"}
CSV, XLSX = "text/csv", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _error_schema(op: dict, status: int) -> str:
    return op["responses"][str(status)]["content"]["application/json"]["schema"]["$ref"]


def test_every_error_is_documented_with_the_body_the_api_sends():
    assert "HTTPValidationError" not in DOCUMENT["components"]["schemas"]
    for path, method, op in OPERATIONS:
        errors = {int(code) for code in op["responses"] if code.startswith(("4", "5"))}
        assert 422 in errors or not (op.get("parameters") or op.get("requestBody")), (method, path)
        if path != "/api/v1/auth/token":
            assert {401, 404} <= errors, (method, path)
        if op.get("requestBody"):
            assert 400 in errors, (method, path)
        for status in errors:
            assert _error_schema(op, status) in PROBLEM_REFS, (method, path, status)
    login_errors = DOCUMENT["paths"]["/api/v1/auth/token"]["post"]["responses"]
    assert {"401", "422", "423", "429"} <= set(login_errors)


def test_exports_document_their_media_types():
    exporting = [(path, op) for path, method, op in OPERATIONS
                 if any(p["name"] == "format" for p in op.get("parameters", []))]
    assert len(exporting) >= 7
    for path, op in exporting:
        media = set(op["responses"]["200"]["content"])
        assert XLSX in media and (CSV in media or "text/html" in media), path


@pytest.fixture
def admin(api, db, registry):
    seed_one_of_everything(db, registry)
    registry.user("admin", "province", "420000", role="admin")
    registry.user("viewer", "county", "421303", role="viewer")
    return login(api, "admin")


def test_real_error_bodies_match_the_document(api, admin):
    viewer = login(api, "viewer")
    answers = {
        401: api.get("/api/v1/auth/me"),
        403: api.post("/api/v1/scopes/county/421303/patrol/rounds", headers=viewer),
        404: api.get("/api/v1/scopes/city/999999", headers=admin),
        422: api.get("/api/v1/scopes/county/421303/devices", params={"page": 0}, headers=admin),
        400: api.post("/api/v1/scopes/county/421303/silences", content=b'{"ends_at": ' + b"1" * 5000 + b"}",
                      headers={**admin, "Content-Type": "application/json"}),  # a number Python will not read
    }
    for status, r in answers.items():
        assert r.status_code == status, (status, r.text)
        assert r.headers["content-type"] == "application/json"
        Problem.model_validate_json(r.content)
    assert answers[422].json()["errors"][0]["loc"] == ["query", "page"]
    refused = api.post("/api/v1/lessons/timetable", json=[{"id": "L1"}], headers=admin)
    assert refused.status_code == 422 and ImportProblem.model_validate_json(refused.content).errors


@pytest.mark.parametrize("path", ["/api/v1/scopes/county/421303/devices", "/api/v1/scopes/county/421303/alerts",
                                  "/api/v1/scopes/county/421303/work-orders", "/api/v1/scopes/county/421303/ranking",
                                  "/api/v1/scopes/county/421303/communities",
                                  "/api/v1/scopes/county/421303/lessons/sessions"])
def test_real_exports_have_the_documented_media_types(api, admin, path):
    documented = set(DOCUMENT["paths"][path.replace("county/421303", "{level}/{code}")]["get"]["responses"]["200"]
                     ["content"])
    for fmt in ("csv", "xlsx"):
        r = api.get(path, params={"format": fmt}, headers=admin)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].split(";")[0] in documented
