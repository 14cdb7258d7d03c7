"""The API application: one pool per process, routers per bounded context."""

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from api.alerts.router import router as alerts_router
from api.auth.router import router as auth_router
from api.communities.router import router as communities_router
from api.devices.publisher import CommandPublisher
from api.devices.router import router as devices_router
from api.equity.router import router as equity_router
from api.lessons.router import router as lessons_router
from api.metrics.router import router as metrics_router
from api.observability import RequestLogMiddleware, metrics_response
from api.scopes.router import router as scopes_router
from api.security import SecurityHeaders
from api.settings import api_settings
from api.targets.router import router as targets_router
from core.db import open_pool
from core.settings import platform_settings

log = logging.getLogger(__name__)

ROUTERS = (auth_router, alerts_router, scopes_router, devices_router, metrics_router, targets_router, equity_router,
           lessons_router, communities_router)


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


async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
    return JSONResponse(status_code=422, content={"detail": "invalid request", "errors": errors})


def create_app() -> FastAPI:
    """Build the API application."""
    app = FastAPI(
        title="Education cockpit API",
        version="1",
        description="Four-level metrics of classroom technology: availability, use, the three "
                    "classrooms, communities, equity and the smart patrol.",
        lifespan=lifespan,
    )
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_middleware(CORSMiddleware, allow_origins=api_settings().cors_origins,
                       allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                       allow_headers=["Authorization", "Content-Type"])
    app.add_middleware(RequestLogMiddleware)
    app.add_middleware(SecurityHeaders)
    for router in ROUTERS:
        app.include_router(router)

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
