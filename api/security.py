"""Security headers on every API response (plain ASGI, no per-request overhead beyond the headers)."""

_COMMON = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-site"),
]
# The API serves JSON and files: nothing may run or be framed. Its interactive docs load
# their own scripts and styles from the configured CDN, so they get a looser policy.
_STRICT_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
_DOCS_CSP = (b"content-security-policy", b"default-src 'self' https: 'unsafe-inline'; img-src 'self' https: data:; "
             b"frame-ancestors 'none'")
_DOCS = ("/docs", "/redoc", "/openapi.json")


class SecurityHeaders:
    """Adds the headers to every HTTP response."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = _DOCS_CSP if scope.get("path", "").startswith(_DOCS) else _STRICT_CSP

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).extend([*_COMMON, csp])
            await send(message)

        await self.app(scope, receive, send_with_headers)


class AllowHeader:
    """A 405 names every method the path supports, not only those of the first route that matched it.

    Starlette answers 405 from the first route whose path matches, so a path served by two routes
    (GET and POST on …/commands) advertised only one. `methods_of` maps a path to all its methods
    (from the OpenAPI document), and the header is rewritten from it.
    """

    def __init__(self, app, methods_of) -> None:
        self.app = app
        self.methods_of = methods_of

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_allow(message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                methods = self.methods_of(scope.get("path", ""))
                if methods:
                    allow = ", ".join(sorted({*methods, *(["HEAD"] if "GET" in methods else [])})).encode()
                    headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
                    message["headers"] = [*headers, (b"allow", allow)]
            await send(message)

        await self.app(scope, receive, send_with_allow)
