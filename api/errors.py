"""Error bodies as the API really sends them, documented once, and the last line of defence.

Every error the API answers has the body `Problem`: a `detail` saying why, and for an invalid
request the `errors` naming each field at fault. `problems(...)` gives the `responses=` entries
that put this model into the OpenAPI document, so the document describes the bodies clients get.

Input that PostgreSQL refuses should never reach it: `api.inputs` checks it first. Should a
refusal still come back (a check constraint, a foreign key, a value out of range), the handlers
here answer 409 or 422 with the database's reason instead of a 500, roll nothing forward (the
request's connection is rolled back when it returns to the pool), and log the refusal at ERROR
with its traceback and count it in `api_database_refusals`: each one is a validation gap to close.
"""

import logging

import psycopg
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import Counter
from psycopg import errors as pg
from pydantic import BaseModel, Field

from api.observability import REGISTRY

log = logging.getLogger(__name__)

REFUSALS = Counter("api_database_refusals", "Requests whose input the database refused (validation gaps)",
                   ["route", "error"], registry=REGISTRY)


class FieldError(BaseModel):
    """One field at fault in a request."""

    loc: list[str | int] = Field(description="where: body, query, path, header or form, then the field's path")
    msg: str
    type: str


class Problem(BaseModel):
    """Why the API refused a request."""

    detail: str = Field(examples=["no such scope"])
    errors: list[FieldError] | None = Field(default=None, description="the fields at fault (invalid requests only)")


class RowProblem(BaseModel):
    """One row of an import refused, and why."""

    row: int
    column: str | None
    message: str


class ImportProblem(BaseModel):
    """An invalid request, or an import refused row by row (nothing written)."""

    detail: str
    errors: list[FieldError | RowProblem] | None = None


DESCRIPTIONS = {
    400: "The body could not be read (not JSON, not a form, broken multipart).",
    401: "No valid bearer token: missing, expired, revoked, or wrong credentials at login.",
    403: "The user's role may not do this.",
    404: "No such thing, or it lies outside the user's scope (the two are not told apart).",
    409: "The request conflicts with the current state.",
    413: "The upload is too large.",
    415: "The upload is of a type the route does not read.",
    422: "Invalid input: `errors` names each field at fault and why.",
    423: "The account is locked after repeated failed logins; `Retry-After` says for how long.",
    429: "Too many failed logins from this address; `Retry-After` says when to try again.",
    503: "Busy with other work of the same kind; `Retry-After` says when to try again.",
}


def problems(*codes: int, model: type[BaseModel] = Problem) -> dict[int | str, dict]:
    """`responses=` entries documenting these error statuses with the real error body."""
    return {code: {"model": model, "description": DESCRIPTIONS[code]} for code in codes}


def problem_schemas() -> dict[str, dict]:
    """The OpenAPI component schemas of `Problem` and what it refers to."""
    schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}", mode="serialization")
    defs = schema.pop("$defs", {})
    return {**defs, "Problem": schema}


def problem_response(code: int) -> dict:
    """One OpenAPI response object: this status with the `Problem` body."""
    return {"description": DESCRIPTIONS[code],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}


def _text(value: object) -> str:
    # What the database or a client said, made safe to send back as JSON text.
    return str(value).replace("\x00", "\\u0000").encode("utf-8", "replace").decode()


async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with each field at fault (never echoing the input back)."""
    errors = [{"loc": [x if isinstance(x, int) else _text(x) for x in e["loc"]], "msg": _text(e["msg"]),
               "type": e["type"]} for e in exc.errors()]
    return JSONResponse(status_code=422, content={"detail": "invalid request", "errors": errors})


# (class, status, what it means to the client), most specific first.
_REFUSALS: tuple[tuple[type[Exception], int, str], ...] = (
    (pg.UniqueViolation, 409, "conflicts with an existing record"),
    (pg.ExclusionViolation, 409, "conflicts with an existing record"),
    (pg.ForeignKeyViolation, 422, "refers to something that does not exist"),
    (pg.CheckViolation, 422, "breaks a rule of the stored data"),
    (pg.NotNullViolation, 422, "leaves out a required value"),
    (pg.IntegrityError, 409, "conflicts with the stored data"),
    (psycopg.DataError, 422, "holds a value the database cannot store"),
    (UnicodeEncodeError, 422, "holds text that is not valid UTF-8"),
)


def _route(request: Request) -> str:
    return getattr(request.scope.get("route"), "path", "unmatched")


async def database_refused(request: Request, exc: Exception) -> JSONResponse:
    """Last line of defence: the database refused the input. Answer 409/422 with the reason; log the gap."""
    status, meaning = next((s, m) for cls, s, m in _REFUSALS if isinstance(exc, cls))
    diag = getattr(exc, "diag", None)
    reason = getattr(diag, "message_primary", None) or next(iter(str(exc).splitlines()), type(exc).__name__)
    constraint = getattr(diag, "constraint_name", None)
    REFUSALS.labels(_route(request), type(exc).__name__).inc()
    log.error("the database refused the input of %s %s (%s): validation should have caught it",
              request.method, _route(request), type(exc).__name__, exc_info=exc,
              extra={"request_id": request.scope.get("state", {}).get("request_id")})
    detail = f"the request {meaning}: {_text(reason)}" + (f" ({constraint})" if constraint else "")
    return JSONResponse(status_code=status, content={"detail": detail})


def install(app) -> None:
    """Register the handlers on an application."""
    app.add_exception_handler(RequestValidationError, validation_error)
    for cls in {cls for cls, _, _ in _REFUSALS}:
        app.add_exception_handler(cls, database_refused)
