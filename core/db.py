"""Database access: one connection pool per process, transactions, schema migrations.

The SQL files in `sql/` are the source of truth for the schema. They are applied in
order by `migrate`, each in its own transaction, and recorded in `schema_migration`.
"""

import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from core.settings import PROJECT_ROOT

log = logging.getLogger(__name__)

MIGRATIONS_DIR = PROJECT_ROOT / "sql"
_MIGRATION_LOCK = 742_001  # advisory lock id: one migrator at a time


def open_pool(url: str, *, min_size: int = 1, max_size: int = 8, name: str = "cockpit") -> ConnectionPool:
    """Open a connection pool and wait until it has its first connection."""
    pool = ConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        name=name,
        # JIT compiles a query for tens of milliseconds to save as many on rows the platform's reads
        # never have: the figures read rollups and running totals, not raw telemetry
        kwargs={"row_factory": dict_row, "application_name": name, "options": "-c jit=off"},
        open=False,
    )
    pool.open(wait=True, timeout=30)
    return pool


@contextmanager
def transaction(pool: ConnectionPool) -> Iterator[psycopg.Connection]:
    """A connection inside one transaction: committed on success, rolled back on error."""
    with pool.connection() as conn, conn.transaction():
        yield conn


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[Path]:
    """The migration files in the order they are applied."""
    return sorted(p for p in directory.glob("*.sql") if p.name[:3].isdigit())


def timescaledb_enabled(conn: psycopg.Connection) -> bool:
    """True when the TimescaleDB extension is installed in this database."""
    row = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
    return row is not None


def _enable_timescaledb(conn: psycopg.Connection) -> None:
    available = conn.execute(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()
    if available is None:
        log.info("TimescaleDB not available: using plain PostgreSQL tables and project rollups")
        return
    try:
        with conn.transaction():
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except psycopg.Error as exc:  # e.g. not in shared_preload_libraries
        log.warning("TimescaleDB is installed but cannot be enabled (%s); using plain tables", exc)


def migrate(url: str, *, use_timescaledb: bool = True) -> list[str]:
    """Apply every migration not yet recorded; return the names applied now."""
    applied_now: list[str] = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
        try:
            conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_migration (
                       version text PRIMARY KEY,
                       checksum text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
            done = dict(conn.execute("SELECT version, checksum FROM schema_migration").fetchall())
            if use_timescaledb and not done:
                _enable_timescaledb(conn)
            for path in migration_files():
                sql = path.read_text(encoding="utf-8")
                checksum = hashlib.sha256(sql.encode()).hexdigest()
                if path.name in done:
                    if done[path.name] != checksum:
                        log.warning("migration %s changed after it was applied", path.name)
                    continue
                with conn.transaction():
                    conn.execute(sql)
                    conn.execute(
                        "INSERT INTO schema_migration (version, checksum) VALUES (%s, %s)",
                        (path.name, checksum),
                    )
                applied_now.append(path.name)
                log.info("applied migration %s", path.name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))
    return applied_now
