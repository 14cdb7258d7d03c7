"""The API application: one pool per process, routers per bounded context."""

import logging
import re
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from api.auth.display_router import router as display_router
from api.auth.router import router as auth_router
from api.communities.router import router as communities_router
from api.devices.publisher import CommandPublisher
from api.devices.router import router as devices_router
from api.equity.router import router as equity_router
from api.errors import install as install_error_handlers
from api.errors import problem_response, problem_schemas
from api.geo.router import router as geo_router
from api.ingest_push.router import router as ingest_push_router
from api.inputs import JSON_VALUE_SCHEMA
from api.inspection.router import router as inspection_router
from api.lessons.router import router as lessons_router
from api.metrics.members_router import router as members_router
from api.metrics.router import router as metrics_router
from api.observability import RequestLogMiddleware, metrics_response
from api.patrol.field_router import router as field_router
from api.patrol.router import router as patrol_router
from api.registry.import_router import router as registry_import_router
from api.registry.router import router as registry_router
from api.scopes.router import router as scopes_router
from api.security import AllowHeader, SecurityHeaders
from api.settings import api_settings
from api.targets.router import router as targets_router
from core.db import open_pool
from core.settings import platform_settings

log = logging.getLogger(__name__)

PUBLIC_ROUTES = {"/api/v1/auth/token"}
ROUTERS = (auth_router, patrol_router, scopes_router, devices_router, metrics_router, targets_router, equity_router,
           lessons_router, communities_router, members_router, ingest_push_router, registry_router,
           registry_import_router, geo_router, display_router, inspection_router, field_router)


@asynccontextmanager
async def lifespan(app: FastAPI):
    api_settings().signing_key()  # refuse to start with a placeholder secret
    app.state.pool = open_pool(platform_settings().require_database_url(),
                               max_size=api_settings().pool_size, name="api")
    app.state.publisher = CommandPublisher(platform_settings())
    app.state.publisher.start()
    try:
        yield
    finally:
        app.state.publisher.stop()
        app.state.pool.close()


def _complete_document(app: FastAPI) -> None:
    """The OpenAPI document as the API behaves: its real error bodies, and the free-form JSON value.

    Every operation documents the errors any route answers, with the body the API really sends
    (`api.errors.Problem`): 401 and 404 where a token is needed (404 also means outside the
    user's scope), 422 where there is input (replacing the framework's default body, which the
    API never sends), 400 where a body is read. Routes document their own 403, 409, 423 or 429.
    """
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            document = generate()
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            schemas["JsonValue"] = JSON_VALUE_SCHEMA
            schemas.update(problem_schemas())
            for path, operations in document.get("paths", {}).items():
                for operation in operations.values():
                    _document_operation_errors(path, operation)
            for unused in ("HTTPValidationError", "ValidationError"):
                schemas.pop(unused, None)
        return app.openapi_schema

    app.openapi = openapi


def _document_operation_errors(path: str, operation: dict) -> None:
    responses = operation.setdefault("responses", {})
    codes = [] if path in PUBLIC_ROUTES else [401, 404]
    if operation.get("parameters") or operation.get("requestBody"):
        codes.append(422)
        default_422 = responses.get("422", {}).get("content", {}).get("application/json", {}).get("schema", {})
        if default_422.get("$ref", "").endswith("/HTTPValidationError"):
            del responses["422"]
    if operation.get("requestBody"):
        codes.append(400)
    for code in codes:
        responses.setdefault(str(code), problem_response(code))


def _methods_of(app: FastAPI):
    """A function from a request path to the methods the document lists for it (computed once, when needed)."""
    table: list[tuple[re.Pattern, set[str]]] = []

    def methods_of(path: str) -> set[str]:
        if not table:
            for template, operations in app.openapi().get("paths", {}).items():
                pattern = re.compile("^" + re.sub(r"\\{[^}/]+\\}", "[^/]+", re.escape(template)) + "$")
                table.append((pattern, {m.upper() for m in operations}))
        return next((methods for pattern, methods in table if pattern.match(path)), set())

    return methods_of


def create_app() -> FastAPI:
    """Build the API application."""
    app = FastAPI(
        title="Education cockpit API",
        version="1",
        description="Four-level metrics of classroom technology: availability, use, the three "
                    "classrooms, communities, equity and the smart patrol.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(CORSMiddleware, allow_origins=api_settings().cors_origins,
                       allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                       allow_headers=["Authorization", "Content-Type"])
    app.add_middleware(RequestLogMiddleware)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(AllowHeader, methods_of=_methods_of(app))
    for router in ROUTERS:
        app.include_router(router)
    _complete_document(app)

    @app.get("/metrics", include_in_schema=False)
    def metrics():
        return metrics_response()

    @app.get("/healthz", tags=["health"], include_in_schema=False)
    def healthz() -> dict:
        return {"status": "alive"}

    @app.get("/readyz", tags=["health"], include_in_schema=False)
    def readyz() -> JSONResponse:
        try:
            with app.state.pool.connection(timeout=2) as conn:
                conn.execute("SELECT 1")
        except Exception as exc:  # any failure means not ready
            return JSONResponse({"ready": False, "error": str(exc)}, status_code=503)
        return JSONResponse({"ready": True})

    return app
