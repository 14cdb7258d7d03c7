"""The audit log: every write through the API is recorded here, in the same transaction."""

import json

from psycopg import Connection

from api.auth.models import User


def record(conn: Connection, user: User, action: str, target: str, detail: dict | None = None) -> None:
    """Append one audit entry for a write the user made."""
    conn.execute(
        "INSERT INTO audit_log (username, action, target, detail) VALUES (%s, %s, %s, %s)",
        (user.username, action, target, json.dumps(detail or {}, ensure_ascii=False, default=str)),
    )
