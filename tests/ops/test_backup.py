"""Backup and restore with pg_dump/pg_restore keep what a bureau cannot rebuild."""

from datetime import UTC, datetime, timedelta

import psycopg

from ops.backup import backup, restore
from ops.seed.generator import seed_database
from rollups import service as rollups
from tests.fixtures.devices import board_reading


def _counts(url: str, tables: list[str]) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}  # noqa: S608


def test_a_backup_restores_into_an_empty_database(postgres, database_url, db, registry, tmp_path):
    seed_database(database_url, "demo")
    reading = board_reading(1)
    device = db.execute("SELECT id FROM device WHERE kind = 'board' LIMIT 1").fetchone()["id"]
    db.execute("INSERT INTO board_telemetry (device_id, time, seq, power_on, screen_on, active_use_s) "
               "VALUES (%s, %s, 1, true, true, 10)", (device, reading.ts))
    registry.target("province", "420000", value=0.95, deadline="2026-12-31", set_by="admin")
    registry.audit("admin", "target.set", "province:420000")
    rollups.refresh(db, now=datetime.now(UTC) + timedelta(hours=1))
    kept = ["school", "device", "community_member", "remote_lesson", "app_user", "target", "audit_log",
            "schema_migration", "device_hourly", "school_hourly"]
    before = _counts(database_url, kept)
    assert before["device_hourly"] >= 1 and before["school_hourly"] >= 1  # the reading, rolled up

    dump = backup(database_url, tmp_path / "cockpit.dump")
    target_url = postgres.create_database("cockpit_restored")
    restore(target_url, dump)

    assert _counts(target_url, kept) == before
    assert _counts(target_url, ["board_telemetry"]) == {"board_telemetry": 0}  # raw data left out by default
    full = backup(database_url, tmp_path / "full.dump", include_raw=True)
    again = postgres.create_database("cockpit_restored_full")
    restore(again, full)
    assert _counts(again, ["board_telemetry"]) == {"board_telemetry": 1}
    with psycopg.connect(target_url) as conn:  # the restored database accepts new data
        conn.execute("INSERT INTO audit_log (username, action, target, at) VALUES ('admin', 'x', 'y', %s)",
                     (datetime.now(UTC),))
