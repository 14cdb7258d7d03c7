"""Broker accounts benchmark: how long the broker's password file takes to follow the registry
at province scale (ops/broker_auth.py, ops/broker_sync.py).

    python -m bench.broker_accounts                  # its own PostgreSQL in a temporary folder
    python -m bench.broker_accounts --devices 20000  # smaller

Printed, each measured in the same run on the same registry:

* baseline: the first write, which hashes every device (what every rewrite cost before the
  password file kept the lines it has);
* one more device registered: the rewrite that follows, hashing that device only;
* one device retired: the rewrite that leaves it out;
* a new provisioning secret: every device hashed again.
"""

import argparse
import tempfile
import time
from pathlib import Path

import psycopg

from core.db import migrate
from ops.broker_auth import write_files
from ops.embedded import EmbeddedPostgres

SECRET, PLATFORM = "bench-provisioning-secret-0123456789", "bench-platform-password-0123"


def registry(conn: psycopg.Connection, devices: int) -> None:
    """One province, city, county and school, and `devices` boards there."""
    conn.execute("INSERT INTO province VALUES ('610000', '陕西省')")
    conn.execute("INSERT INTO city VALUES ('610300', '610000', '宝鸡市')")
    conn.execute("INSERT INTO county VALUES ('610302', '610300', '610000', '渭滨区')")
    conn.execute("INSERT INTO school (code, name, county_code, city_code, province_code, locale, stage, classes, "
                 "students, teachers) VALUES ('6103020001', '学校', '610302', '610300', '610000', 'urban', "
                 "'primary', 1, 1, 1)")
    with conn.cursor().copy("COPY device_all (id, kind, school_code, room, vendor, model) FROM STDIN") as copy:
        for n in range(devices):
            copy.write_row((f"B{n:07d}", "board", "6103020001", "101", "vendor", "model"))


def timed(label: str, fn) -> float:
    started = time.perf_counter()
    fn()
    seconds = time.perf_counter() - started
    print(f"{label:<48} {seconds:6.2f} s", flush=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg").start()
        try:
            migrate(pg.url)
            with psycopg.connect(pg.url, autocommit=True) as conn:
                registry(conn, args.devices)
                auth = Path(tmp) / "auth"
                print(f"{args.devices:,} devices")
                cold = timed("baseline: first write (every device hashed)",
                             lambda: write_files(conn, auth, SECRET, PLATFORM))
                conn.execute("INSERT INTO device (id, kind, school_code, room, vendor, model) "
                             "VALUES ('NEW-0001', 'board', '6103020001', '102', 'vendor', 'model')")
                warm = timed("one device registered: rewrite", lambda: write_files(conn, auth, SECRET, PLATFORM))
                conn.execute("UPDATE device_all SET retired_at = now() WHERE id = 'B0000000'")
                timed("one device retired: rewrite", lambda: write_files(conn, auth, SECRET, PLATFORM))
                timed("a new provisioning secret: every device hashed again",
                      lambda: write_files(conn, auth, SECRET + "-rotated", PLATFORM))
                print(f"a registration's rewrite takes {warm / cold:.1%} of the first write's time")
        finally:
            pg.stop()


if __name__ == "__main__":
    main()
