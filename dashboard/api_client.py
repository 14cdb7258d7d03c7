"""The cockpit's only way to data: the metrics API, called with the user's token."""

from functools import lru_cache

import httpx

from dashboard.settings import dashboard_settings


class ApiError(Exception):
    """The API refused or failed a request; the message is shown to the user."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@lru_cache
def _client() -> httpx.Client:
    s = dashboard_settings()
    return httpx.Client(base_url=s.api_url, timeout=s.request_timeout_s)


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        detail = response.text
    raise ApiError(response.status_code, f"{response.status_code}: {detail}")


def login(username: str, password: str) -> str:
    """A bearer token for these credentials."""
    try:
        r = _client().post("/api/v1/auth/token", data={"username": username, "password": password})
    except httpx.HTTPError as exc:
        raise ApiError(503, f"API unreachable: {exc}") from exc
    _raise_for(r)
    return r.json()["access_token"]


def get(token: str, path: str, **params) -> dict | list:
    """GET an API path as the user the token belongs to."""
    try:
        r = _client().get(path, params=params or None, headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError as exc:
        raise ApiError(503, f"API unreachable: {exc}") from exc
    _raise_for(r)
    return r.json()
