"""Every API response carries a request id; the API exposes Prometheus metrics and health."""

from tests.fixtures.app import login


def test_request_ids_metrics_and_health(api, registry):
    registry.area()
    registry.user("zengdu", "county", "421303")
    headers = login(api, "zengdu") | {"X-Request-ID": "trace-me-123"}
    r = api.get("/api/v1/scopes/county/421303/overview", headers=headers)
    assert r.status_code == 200 and r.headers["x-request-id"] == "trace-me-123"
    assert len(api.get("/healthz").headers["x-request-id"]) == 32  # made up when the caller gave none
    metrics = api.get("/metrics").text
    assert 'api_requests_total{method="GET",route="/api/v1/scopes/{level}/{code}/overview",status="200"}' in metrics
    assert api.get("/readyz").json() == {"ready": True}
