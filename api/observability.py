"""Request ids, one structured log line per request, and Prometheus metrics for the API."""

import logging
import time
import uuid

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import Response

log = logging.getLogger("api.access")

REGISTRY = CollectorRegistry()
REQUESTS = Counter("api_requests", "API requests", ["method", "route", "status"], registry=REGISTRY)
LATENCY = Histogram("api_request_seconds", "API request duration", ["route"], registry=REGISTRY,
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2, 5))


def _route(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "path", "unmatched")


class RequestLogMiddleware(BaseHTTPMiddleware):
    """Tags each request with an id (kept from X-Request-ID if given), logs and measures it."""

    async def dispatch(self, request: Request, call_next):
        request_id = request.headers.get("x-request-id", "")[:64] or uuid.uuid4().hex
        request.state.request_id = request_id
        started = time.perf_counter()
        response = await call_next(request)
        elapsed = time.perf_counter() - started
        route = _route(request)
        REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        LATENCY.labels(route).observe(elapsed)
        response.headers["X-Request-ID"] = request_id
        log.info("%s %s %s", request.method, route, response.status_code,
                 extra={"request_id": request_id, "status": response.status_code,
                        "duration_ms": round(elapsed * 1000, 1), "path": request.url.path})
        return response


def metrics_response() -> Response:
    """The API's metrics in Prometheus text format."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
