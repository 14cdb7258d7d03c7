r"""Where a login lands: the cockpit page a logged-out visitor opened (a notice's link), never elsewhere.

Anyone without a session is sent to `/login?next=<the page they opened>`; after the login the form
goes to `next` only when it is a path of this cockpit. Everything else — another site
(`https://…`, `//host`, `/\host`, which browsers read as `//host`), a `javascript:` URL, a path
with spaces or control characters (a tab inside `/\t/host` is dropped by browsers, leaving
`//host`), the login page itself — lands on the overview: no open redirect.
"""

from urllib.parse import quote, urlsplit

HOME = "/"
LOGIN = "/login"
MAX_NEXT = 2000  # characters: a page's path and query, never a document


def safe_next(target: str | None) -> str:
    """`target` when it is a same-site path (one leading "/", no scheme or host, no backslash, no space
    or control character, not the login page); HOME otherwise."""
    if not isinstance(target, str) or not target.startswith("/") or target.startswith("//"):
        return HOME
    if len(target) > MAX_NEXT or any(c == "\\" or c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return HOME
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or parts.path in (LOGIN, LOGIN + "/"):
        return HOME
    return target


def login_href(pathname: str | None, search: str | None) -> str:
    """The login page, asked to come back to the page at `pathname` and `search` afterwards."""
    target = safe_next((pathname or HOME) + (search or ""))
    return LOGIN if target == HOME else f"{LOGIN}?next={quote(target, safe='')}"
