"""A tiny HTTP endpoint every background service exposes: /healthz, /readyz and /metrics."""

import json
import logging
import threading
from collections.abc import Callable
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

log = logging.getLogger(__name__)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


class HealthServer:
    """Serves liveness, readiness (from a callback) and Prometheus metrics in a thread."""

    def __init__(self, host: str, port: int, registry: CollectorRegistry,
                 readiness: Callable[[], dict]) -> None:
        self._metrics = make_wsgi_app(registry)
        self._readiness = readiness
        self._server: WSGIServer = make_server(host, port, self._app, handler_class=_QuietHandler)
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, name="health", daemon=True)

    def _app(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return self._metrics(environ, start_response)
        if path in ("/healthz", "/readyz"):
            body = {"status": "alive"} if path == "/healthz" else self._readiness()
            ready = path == "/healthz" or body.get("ready", False)
            start_response("200 OK" if ready else "503 Service Unavailable",
                           [("Content-Type", "application/json")])
            return [json.dumps(body, default=str).encode()]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]

    def start(self) -> None:
        """Start serving in a daemon thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
