"""Patrol benchmark: one evaluation cycle over a whole province, and fault to notice.

    python -m bench.patrol              # province scale (~10,000 schools, ~215,000 devices)
    python -m bench.patrol --scale demo

Cycles: seeds the province with the current state of every device (a few counties
worse than the rest, so alerts open), then runs patrol cycles at a lesson time on a
school day, every rule due in each: the first cycle opens the alerts, the later ones are
the steady state (the patrol's normal life: most conditions unchanged), first with nothing
written between two cycles, then with a share of the fleet's states written again before
each (`--changed-share`, default a quarter: a 15 s cycle when every device reports once a
minute; each row rewritten as a reading rewrites it, its values as they were). Each cycle's
time is the wall clock and, beside it, the CPU time of the database backend that ran it
(read from /proc: the embedded server runs here), which another load on a shared machine
disturbs less.

Latency: on the same province, the ingest and the patrol run as their own processes
(patrol cycle every 15 s, as configured by default) and the simulator drives one
school's devices (a reading every 10 s). The simulator injects a camera lost on a
recording room, then cuts the school's gateway off the network; the benchmark times
each from the injection to the notice on the operations topic. The rules' own waits
(for-duration, evaluation cadence, school-hours window) are set to zero so the figure
is the platform's machinery, whatever the hour; a deployment adds its policy on top.
"""

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from psycopg.rows import dict_row

from bench.cockpit import start
from core.calendar import load_calendar
from core.db import migrate
from core.mqtt import release
from core.settings import parse_mqtt_url
from devices.fleet import Fleet
from devices.settings import SimulatorSettings
from devices.simulator import Simulator, load_devices
from ops.embedded import EmbeddedMosquitto, EmbeddedPostgres, free_port
from ops.seed.generator import seed_database
from ops.seed.history import current_state
from patrol.engine import run_cycle
from patrol.settings import PatrolSettings

LESSON_TIME = datetime(2026, 11, 24, 2, 10, tzinfo=UTC)  # Tuesday 10:10 in Asia/Shanghai, in term
# The rules the latency run waits on, with their policy waits removed (see the module's docstring).
NO_WAIT = ("camera_lost", "gateway_offline")


def _backend_cpu(pid: int) -> float:
    """CPU seconds a local server process has used (user and system)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cycles(conn: psycopg.Connection, n: int, changing: int, share: float) -> tuple[list[tuple], list[dict]]:
    """Run n cycles, then `changing` more with `share` of the device states written again before each, at a
    lesson time with every rule due; each one's (wall seconds, database CPU seconds, what it looked at), and
    the alerts by state."""
    current_state(conn)
    conn.execute("UPDATE device_state SET status_time = %s - interval '1 hour' WHERE NOT online", (LESSON_TIME,))
    conn.execute("VACUUM ANALYZE")
    calendar = load_calendar(conn)
    backend = conn.execute("SELECT pg_backend_pid() AS pid").fetchone()["pid"]
    results = []
    for i in range(n + changing):
        if i >= n:  # as the ingest does for each reading: a new row version, here with the values it had
            conn.execute("UPDATE device_state SET updated_at = now() WHERE abs(hashtext(device_id || %s)) %% 10000 < %s",
                         (str(i), round(share * 10000)))
        conn.execute("UPDATE patrol_rule SET last_evaluated_at = NULL")  # every rule due every cycle
        started, cpu = time.perf_counter(), _backend_cpu(backend)
        result = run_cycle(conn, LESSON_TIME.replace(minute=10 + i), calendar)
        results.append((time.perf_counter() - started, _backend_cpu(backend) - cpu, result))
    alerts = conn.execute("SELECT state, count(*) AS n FROM alert GROUP BY 1 ORDER BY 1").fetchall()
    return results, alerts


def _figures(results: list[tuple]) -> str:
    wall, cpu = [r[0] for r in results], [r[1] for r in results]
    # an engine from before the patrol looked only at what changed has no `candidates`: it looked at every device
    looked = [getattr(r[2], "candidates", None) for r in results]
    looked_at = "every device" if None in looked else f"{statistics.median(looked):,.0f} devices (median)"
    return (f"median {statistics.median(wall):.2f}s, max {max(wall):.2f}s; database CPU median "
            f"{statistics.median(cpu):.2f}s ({len(results)} cycles; the per-device checks looked at {looked_at})")


class NoticeWatch:
    """Subscribes to the operations topic and notes when each device appears in a notice."""

    def __init__(self, broker_url: str, topic: str) -> None:
        self.seen: dict[str, list[float]] = {}
        self.changed = threading.Condition()
        address = parse_mqtt_url(broker_url)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-notices")
        self.client.on_message = self._message
        self.client.on_connect = lambda c, *_: c.subscribe(topic, 1)
        self.client.connect_async(address.host, address.port)
        self.client.loop_start()

    def _message(self, _client, _userdata, message) -> None:
        now = time.monotonic()
        with self.changed:
            for alert in json.loads(message.payload).get("alerts", []):
                self.seen.setdefault(alert["device_id"], []).append(now)
            self.changed.notify_all()

    def wait(self, device_id: str, after: float, timeout: float) -> float | None:
        """When the device was first in a notice after `after` (monotonic seconds), or None after the timeout."""
        def first() -> float | None:
            return next((t for t in self.seen.get(device_id, []) if t > after), None)

        with self.changed:
            self.changed.wait_for(lambda: first() is not None, timeout)
            return first()

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        release(self.client)


def _simulate_school(url: str, broker_url: str, school: str) -> tuple[Simulator, threading.Event]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        devices = [d for d in load_devices(conn) if d.school_code == school]
        calendar = load_calendar(conn)
    settings = SimulatorSettings(interval_s=10, fault_scale=0, skewed_share=0, duplicate_share=0, late_share=0)
    sim = Simulator(Fleet(parse_mqtt_url(broker_url)), devices, calendar, settings)
    stop = threading.Event()
    threading.Thread(target=sim.run, args=(stop,), daemon=True).start()
    return sim, stop


def latency(url: str, broker_url: str) -> dict[str, float | None]:
    """Seconds from an injected camera loss, and from a cut gateway, to their notices."""
    with psycopg.connect(url, row_factory=dict_row, autocommit=True) as conn:
        conn.execute("UPDATE patrol_rule SET for_s = 0, every_s = 0, active_in = 'always' WHERE id = ANY(%s)",
                     (list(NO_WAIT),))
        conn.execute("UPDATE patrol_rule SET last_evaluated_at = NULL")
        # steady state: what the cycles opened has been notified already
        conn.execute("UPDATE alert SET notified_at = now(), reminded_at = now() WHERE state <> 'resolved'")
        school = conn.execute(  # a school with a recording room, all online, nothing open
            """SELECT d.school_code FROM device d WHERE d.kind = 'recorder'
               AND NOT EXISTS (SELECT 1 FROM device x JOIN device_state st ON st.device_id = x.id
                               WHERE x.school_code = d.school_code AND NOT st.online)
               AND NOT EXISTS (SELECT 1 FROM alert a WHERE a.school_code = d.school_code)
               ORDER BY d.school_code LIMIT 1""").fetchone()["school_code"]
        recorder, gateway = (conn.execute("SELECT id FROM device WHERE school_code = %s AND kind = %s LIMIT 1",
                                          (school, kind)).fetchone()["id"] for kind in ("recorder", "gateway"))
    env = {**os.environ, "COCKPIT_DATABASE_URL": url, "COCKPIT_MQTT_URL": broker_url}
    ingest_port, patrol_port = free_port(), free_port()
    services = [start(["ingest"], {**env, "INGEST_HEALTH_PORT": str(ingest_port)},
                      f"http://127.0.0.1:{ingest_port}/readyz"),
                start(["patrol"], {**env, "PATROL_HEALTH_PORT": str(patrol_port)},
                      f"http://127.0.0.1:{patrol_port}/readyz")]
    watch = NoticeWatch(broker_url, PatrolSettings().default_mqtt_topic)
    sim, stop = _simulate_school(url, broker_url, school)
    try:
        time.sleep(25)  # every device connected and reporting, the first cycles done
        figures = {}
        for name, device_id, fault in (("camera lost (reading every 10 s, cycle every 15 s)", recorder, "camera_lost"),
                                       ("gateway cut off (last will)", gateway, "offline")):
            injected = time.monotonic()
            sim.inject(device_id, fault, minutes=30)
            seen = watch.wait(device_id, injected, timeout=120)
            figures[name] = None if seen is None else seen - injected
        return figures
    finally:
        stop.set()
        watch.close()
        for proc in services:
            proc.terminate()
            proc.wait(60)  # the patrol finishes the cycle in hand first (its worker is given 30 s)


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=("demo", "province"), default="province")
    parser.add_argument("--cycles", type=int, default=5, help="cycles with nothing written between them")
    parser.add_argument("--changing-cycles", type=int, default=4, help="cycles after a share of the states changed")
    parser.add_argument("--changed-share", type=float, default=0.25)
    parser.add_argument("--no-latency", action="store_true", help="the cycles only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-patrol-") as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg").start()
        broker = EmbeddedMosquitto(Path(tmp) / "mq").start()
        try:
            migrate(pg.url)
            counts = seed_database(pg.url, args.scale)
            with psycopg.connect(pg.url, row_factory=dict_row, autocommit=True) as conn:
                results, alerts = cycles(conn, args.cycles, args.changing_cycles, args.changed_share)
            print(f"{args.scale}: {counts['school']:,} schools, {counts['device']:,} devices; every rule due each cycle")
            first_wall, first_cpu, _ = results[0]
            print(f"first cycle {first_wall:.2f}s (database CPU {first_cpu:.2f}s)")
            print("later cycles, nothing written between:", _figures(results[1:args.cycles]))
            if args.changing_cycles:
                print(f"later cycles, {args.changed_share:.0%} of the device states written before each:",
                      _figures(results[args.cycles:]))
            print("alerts:", ", ".join(f"{a['state']} {a['n']:,}" for a in alerts))
            print(f"load average when done: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
            if args.no_latency:
                return
            for name, seconds in latency(pg.url, broker.url).items():
                print(f"fault to notice, {name}: " + ("no notice within 120 s" if seconds is None else f"{seconds:.1f}s"))
        finally:
            broker.stop()
            pg.stop("immediate")


if __name__ == "__main__":
    main()
