"""The cockpit's route to a still: `/stills/<id>/image?size=&exp=&sig=`, passed on to the API.

The browser loads the wall's pictures from the cockpit, which is the only server it talks to. A
still's link was signed by the API for the user who listed it (api/inspection/links.py); this
route forwards exactly that link — a still's number and the link's three query values, nothing
else, so it reaches no other API route — and passes back the picture, its ETag and its caching
headers, or the API's 304 or 404.
"""

import re

import httpx
from flask import Flask, Response, request

from dashboard.api_client import _client

_SIZE = re.compile(r"^(thumb|full)$")
_NUMBER = re.compile(r"^[0-9]{1,13}$")
_SIGNATURE = re.compile(r"^[0-9a-f]{32}$")
_PASSED_BACK = ("Content-Type", "ETag", "Cache-Control")


def still(snapshot_id: int) -> Response:
    """One still, through the API."""
    size, expires, signature = (request.args.get(k, "") for k in ("size", "exp", "sig"))
    if not (_SIZE.match(size) and _NUMBER.match(expires) and _SIGNATURE.match(signature)):
        return Response("no such still", status=404, mimetype="text/plain")
    headers = {"If-None-Match": request.headers["If-None-Match"]} if "If-None-Match" in request.headers else None
    try:
        answer = _client().get(f"/api/v1/snapshots/{snapshot_id}/image",
                               params={"size": size, "exp": expires, "sig": signature}, headers=headers)
    except httpx.HTTPError:
        return Response("the API is unreachable", status=503, mimetype="text/plain")
    if answer.status_code not in (200, 304):
        return Response("no such still, or its link has expired", status=404, mimetype="text/plain")
    return Response(answer.content, status=answer.status_code,
                    headers={k: answer.headers[k] for k in _PASSED_BACK if k in answer.headers})


def register(server: Flask) -> None:
    """Serve the stills route on the cockpit's server."""
    server.add_url_rule("/stills/<int:snapshot_id>/image", "still", still)
