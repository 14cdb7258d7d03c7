"""Backup and restore with pg_dump / pg_restore.

The registry, users, alerts, work orders, targets and rollups are what a bureau cannot
rebuild; raw telemetry is large, expires after months and is summarised in the
rollups, so it is left out unless asked for (its tables are still created, empty).
"""

import subprocess
from pathlib import Path

from core.embedded import pg_bindir

RAW_TABLES = ("board_telemetry", "recorder_telemetry", "gateway_telemetry", "device_event",
              "device_status_change", "dead_letter")


def backup(database_url: str, out: Path, *, include_raw: bool = False) -> Path:
    """Write a custom-format dump of the database to `out`."""
    args = [str(pg_bindir() / "pg_dump"), "--format=custom", "--no-owner", "--file", str(out)]
    if not include_raw:
        args += [f"--exclude-table-data={t}" for t in RAW_TABLES]
    subprocess.run([*args, database_url], check=True, capture_output=True, text=True)
    return out


def restore(database_url: str, dump: Path) -> None:
    """Restore a dump into an empty database (schema, data and migration records)."""
    subprocess.run([str(pg_bindir() / "pg_restore"), "--no-owner", "--exit-on-error", "--dbname", database_url,
                    str(dump)], check=True, capture_output=True, text=True)
