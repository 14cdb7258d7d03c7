"""The cockpit's only way to data: the metrics API, called with the user's token."""

import time
from functools import lru_cache
from urllib.parse import unquote

import httpx

from dashboard.settings import dashboard_settings

_ROUTES_TTL_S = 30.0
_routes_cache: dict[str, tuple[float, frozenset[str]]] = {}


class ApiError(Exception):
    """The API refused or failed a request; the message is shown to the user."""

    def __init__(self, status: int, message: str, *, reached: bool = True, body: object = None) -> None:
        super().__init__(message)
        self.status = status
        self.reached = reached  # False: no answer at all (the API is down or restarting)
        self.body = body  # the refusal's JSON, for a page that shows it row by row (an import's report)


@lru_cache
def _client() -> httpx.Client:
    s = dashboard_settings()
    return httpx.Client(base_url=s.api_url, timeout=s.request_timeout_s)


def _field_error(error: dict) -> str:
    """One field at fault (`loc` and `msg`), or one row of an import refused (`row`, `column`, `message`)."""
    if "loc" in error:
        return f"{'.'.join(map(str, error['loc']))} {error.get('msg', '')}".strip()
    where = " ".join(str(error[k]) for k in ("sheet", "row", "column") if error.get(k) is not None)
    why = error.get("message") or error.get("msg") or error.get("reason_en") or error.get("reason_zh") or ""
    return f"{where} {why}".strip()


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    body = None
    try:
        body = response.json()
        detail = body.get("detail", response.text)
        if body.get("errors"):
            detail = f"{detail}: " + "; ".join(_field_error(e) for e in body["errors"])
    except (ValueError, AttributeError):  # not JSON, or JSON that is not an object
        detail = response.text
    raise ApiError(response.status_code, f"{response.status_code}: {detail}", body=body)


def _send(method: str, path: str, token: str | None, headers: dict[str, str] | None = None,
          **kwargs) -> httpx.Response:
    headers = {**(headers or {}), **({"Authorization": f"Bearer {token}"} if token else {})} or None
    try:
        r = _client().request(method, path, headers=headers, **kwargs)
    except httpx.HTTPError as exc:
        raise ApiError(503, f"API unreachable: {exc}", reached=False) from exc
    _raise_for(r)
    return r


CLIENT_HEADER = "X-Cockpit-Client"
SECRET_HEADER = "X-Cockpit-Secret"


def login(username: str, password: str, client: str | None = None) -> str:
    """A bearer token for these credentials, typed into the browser at address `client`.

    The API throttles failed logins per client: the cockpit names the browser and vouches for
    it with its secret, so one browser's failures hold back that browser, not everyone using
    the cockpit. Without a secret the browser is not named.
    """
    secret = dashboard_settings().cockpit_credential()
    headers = {CLIENT_HEADER: client, SECRET_HEADER: secret} if client and secret else None
    return _send("POST", "/api/v1/auth/token", None, data={"username": username, "password": password},
                 headers=headers).json()["access_token"]


def get(token: str, path: str, **params) -> dict | list:
    """GET an API path as the user the token belongs to."""
    return _send("GET", path, token, params=params or None).json()


def post(token: str, path: str, body: dict) -> dict:
    """POST a JSON body to an API path as the user; the API's answer."""
    return _send("POST", path, token, json=body).json()


def send(token: str, method: str, path: str, body: dict | None = None, **params) -> dict | list | None:
    """PATCH, PUT, DELETE (or POST) a JSON body to an API path as the user; the API's answer, None when it
    answers with no content (204)."""
    r = _send(method, path, token, json=body, params=params or None)
    return r.json() if r.content else None


def upload(token: str, path: str, filename: str, content: bytes, **params) -> dict:
    """POST a file as the multipart field `file` (an import's workbook) as the user; the API's answer."""
    return _send("POST", path, token, files={"file": (filename, content)}, params=params or None).json()


def post_content(token: str, path: str, content: bytes, media_type: str) -> dict:
    """POST raw bytes of a media type as the body (a photo: image/jpeg) as the user; the API's answer."""
    return _send("POST", path, token, content=content, headers={"Content-Type": media_type}).json()


def download(token: str, path: str, **params) -> tuple[bytes, str]:
    """A file the API exports (format=csv|xlsx), with the file name it suggests."""
    r = _send("GET", path, token, params=params)
    return r.content, file_name(r.headers.get("content-disposition", ""))


def file_name(disposition: str, default: str = "export") -> str:
    """The file name a Content-Disposition header suggests: `filename*=UTF-8''…` (RFC 6266, any language's
    letters) before a plain `filename=`; `default` when it names none."""
    parts = [p.strip() for p in disposition.split(";")]
    for prefix in ("filename*=", "filename="):
        for p in parts:
            if p.lower().startswith(prefix):
                value = p[len(prefix):].strip('"')
                if prefix == "filename*=":
                    value = unquote(value.split("'", 2)[-1])
                if value:
                    return value
    return default


def routes() -> frozenset[str]:
    """The API's route templates (from its OpenAPI document), re-read every 30 seconds."""
    now = time.monotonic()
    cached = _routes_cache.get("routes")
    if cached and now - cached[0] < _ROUTES_TTL_S:
        return cached[1]
    try:
        paths = frozenset(_send("GET", "/openapi.json", None).json().get("paths", {}))
    except ApiError:
        paths = cached[1] if cached else frozenset()
    _routes_cache["routes"] = (now, paths)
    return paths
