"""Backup and restore with pg_dump / pg_restore.

The registry, users, alerts, work orders, targets and rollups are what a bureau cannot
rebuild; raw telemetry is large, expires after months and is summarised in the
rollups, so it is left out unless asked for (its tables are still created, empty).

With TimescaleDB a hypertable's rows live in its chunks, so leaving raw telemetry out
means leaving out the chunks of the raw hypertables (the rollups' own chunks are kept),
and a restore follows TimescaleDB's procedure: the extension created first at the
same version, timescaledb_pre_restore() before pg_restore and timescaledb_post_restore()
after it.
"""

import subprocess
from pathlib import Path

import psycopg

from core.db import timescaledb_enabled
from ops.embedded import pg_bindir

RAW_TABLES = ("board_telemetry", "recorder_telemetry", "gateway_telemetry", "device_event",
              "device_status_change", "dead_letter")


def _run(args: list[str], what: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{what} failed: {done.stderr.strip()[-2000:]}")
    return done.stdout


def _raw_chunks(database_url: str) -> list[str]:
    """The chunks that hold the raw tables' rows (none without TimescaleDB)."""
    with psycopg.connect(database_url) as conn:
        if not timescaledb_enabled(conn):
            return []
        rows = conn.execute("SELECT format('%%I.%%I', chunk_schema, chunk_name) FROM timescaledb_information.chunks "
                            "WHERE hypertable_schema = 'public' AND hypertable_name = ANY(%s)",
                            (list(RAW_TABLES),)).fetchall()
    return [r[0] for r in rows]


def backup(database_url: str, out: Path, *, include_raw: bool = False) -> Path:
    """Write a custom-format dump of the database to `out`."""
    args = [str(pg_bindir() / "pg_dump"), "--format=custom", "--no-owner", "--file", str(out)]
    if not include_raw:
        args += [f"--exclude-table-data={t}" for t in (*RAW_TABLES, *_raw_chunks(database_url))]
    _run([*args, database_url], "pg_dump")
    return out


def restore(database_url: str, dump: Path) -> None:
    """Restore a dump into an empty database (schema, data and migration records)."""
    contents = _run([str(pg_bindir() / "pg_restore"), "--list", str(dump)], "reading the dump")
    extension = [line for line in contents.splitlines() if " EXTENSION - timescaledb " in line
                 or " COMMENT - EXTENSION timescaledb " in line]
    if not extension:
        _run([str(pg_bindir() / "pg_restore"), "--no-owner", "--exit-on-error", "--dbname", database_url, str(dump)],
             "pg_restore")
        return
    # Everything but the extension itself, which must exist before the restore starts.
    listing = dump.with_suffix(".list")
    listing.write_text("\n".join(line for line in contents.splitlines() if line not in extension) + "\n")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        conn.execute("SELECT timescaledb_pre_restore()")
    try:
        _run([str(pg_bindir() / "pg_restore"), "--no-owner", "--exit-on-error", "--use-list", str(listing),
              "--dbname", database_url, str(dump)], "pg_restore")
    finally:
        listing.unlink(missing_ok=True)
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("SELECT timescaledb_post_restore()")
