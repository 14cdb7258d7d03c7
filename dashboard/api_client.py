"""The cockpit's only way to data: the metrics API, called with the user's token."""

import time
from functools import lru_cache

import httpx

from dashboard.settings import dashboard_settings

_ROUTES_TTL_S = 30.0
_routes_cache: dict[str, tuple[float, frozenset[str]]] = {}


class ApiError(Exception):
    """The API refused or failed a request; the message is shown to the user."""

    def __init__(self, status: int, message: str, *, reached: bool = True) -> None:
        super().__init__(message)
        self.status = status
        self.reached = reached  # False: no answer at all (the API is down or restarting)


@lru_cache
def _client() -> httpx.Client:
    s = dashboard_settings()
    return httpx.Client(base_url=s.api_url, timeout=s.request_timeout_s)


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        body = response.json()
        detail = body.get("detail", response.text)
        if body.get("errors"):
            detail = f"{detail}: " + "; ".join(f"{'.'.join(map(str, e['loc']))} {e['msg']}" for e in body["errors"])
    except ValueError:
        detail = response.text
    raise ApiError(response.status_code, f"{response.status_code}: {detail}")


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


def download(token: str, path: str, **params) -> tuple[bytes, str]:
    """A file the API exports (format=csv|xlsx), with the file name it suggests."""
    r = _send("GET", path, token, params=params)
    disposition = r.headers.get("content-disposition", "")
    name = disposition.split("filename=")[-1].strip('"') if "filename=" in disposition else "export"
    return r.content, name


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
