"""Drain benchmark: a backlog queued while the ingest was stopped, timed until all of it is stored.

    python -m bench.drain                          # 300,000 readings, one worker
    python -m bench.drain --messages 100000 --workers 2

Everything runs on this machine: its own PostgreSQL and Mosquitto (queue limits raised to
hold the backlog), 1,000 registered boards. The ingest's persistent session is made by
starting each worker once and stopping it; N QoS 1 readings are then published while no
worker runs, each device's readings half a second apart in device time (a backlog within
the contract's rate, as after an outage: the flood limit keeps its default and lets them
all through). Then the ingest starts as its own process(es) and is timed until every
reading is stored. Printed: msg/s, the ingest's CPU µs per message (from /proc), loss and
duplicates (every published (device, seq) against what is stored), and, in the same run
on the same backlog: the broker's own drain to `mosquitto_sub -q 1` (a persistent session
queued beside the ingest's), raw COPY of the same rows into the same table, and the
ingest's database write alone (`store_batch` on decoded readings, no broker).
"""

import argparse
import multiprocessing as mp
import os
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from bench.ingest import (
    PAYLOAD,
    RawPublisher,
    Workers,
    cpu_seconds,
    load,
    postgres_cpu,
    register,
    storage,
)
from core.db import migrate, open_pool
from core.mqtt import release
from core.telemetry_decode import COLUMNS, ClockPolicy, Record, decode
from core.telemetry_write import store_batch
from ops.embedded import EmbeddedMosquitto, EmbeddedPostgres

SUBSCRIBER = "drain-sub"  # mosquitto_sub's persistent session
TOPIC_FILTER = "edu/dev/+/telemetry"
SPACING_S = 0.5  # device time between two readings of one device: the contract's 2 a second
SEQ0 = 1_000_000  # published readings' first seq (the baselines use their own ranges)


def backlog(devices: list[str], per_device: int) -> tuple[list[bytes], list[list[bytes]]]:
    """Topics and, per device, its readings: oldest first, SPACING_S apart, the newest a minute ago."""
    newest = datetime.now(UTC) - timedelta(seconds=60)
    topics = [f"edu/dev/{d}/telemetry".encode() for d in devices]
    times = [(newest - timedelta(seconds=SPACING_S * (per_device - 1 - k))).isoformat() for k in range(per_device)]
    payloads = [[PAYLOAD.format(ts=times[k], seq=SEQ0 + k, use=SEQ0 + k).encode() for k in range(per_device)]
                for _ in devices]
    return topics, payloads


def publish_share(port: int, devices: list[str], per_device: int, index: int) -> None:
    """Publish every reading of these devices, round-robin (each device's oldest first)."""
    topics, payloads = backlog(devices, per_device)
    publisher = RawPublisher(port, f"drain-pub-{index}-{os.getpid()}")
    for k in range(per_device):
        publisher.publish([(topic, payloads[d][k]) for d, topic in enumerate(topics)])
    publisher.flush()
    publisher.close()


def publish_backlog(port: int, devices: list[str], per_device: int, publishers: int) -> float:
    """Queue the whole backlog; msg/s the broker took it at (every publish acknowledged)."""
    shares = [devices[i::publishers] for i in range(publishers)]
    procs = [mp.Process(target=publish_share, args=(port, share, per_device, i)) for i, share in enumerate(shares)]
    started = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        if p.exitcode:
            raise RuntimeError(f"a publisher failed (exit code {p.exitcode})")
    return len(devices) * per_device / (time.perf_counter() - started)


def subscriber_session(port: int) -> None:
    """Make mosquitto_sub's persistent session (MQTT 3.1.1, clean session off) and leave it."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=SUBSCRIBER, protocol=mqtt.MQTTv311,
                         clean_session=False)
    subscribed = []
    client.on_subscribe = lambda *_args: subscribed.append(True)
    client.connect("127.0.0.1", port)
    client.loop_start()
    client.subscribe(TOPIC_FILTER, qos=1)
    deadline = time.monotonic() + 10
    while not subscribed and time.monotonic() < deadline:
        time.sleep(0.01)
    client.disconnect()
    release(client)
    if not subscribed:
        raise RuntimeError("mosquitto_sub's session was not subscribed")


def broker_drain(port: int, count: int) -> tuple[float, float]:
    """(msg/s, broker CPU µs per message) of the broker handing its queued backlog to mosquitto_sub -q 1."""
    args = ["mosquitto_sub", "-p", str(port), "-i", SUBSCRIBER, "-c", "-q", "1", "-V", "mqttv311",
            "-t", TOPIC_FILTER, "-C", str(count), "-W", "600"]
    started = time.perf_counter()
    done = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"mosquitto_sub failed: {done.stderr.strip()}")
    return count / elapsed, elapsed


def ingest_drain(workers: Workers, pg: EmbeddedPostgres, url: str, count: int, broker_pid: int) -> dict:
    """Start the workers on the queued backlog and time them until it is all stored."""
    started = time.perf_counter()
    workers.start()
    pids = workers.pids
    connected = workers.wait(workers.connected, 60, interval=0.005)
    cpu0 = {"ingest": cpu_seconds(pids), "broker": cpu_seconds([broker_pid]), "postgres": postgres_cpu(pg)}
    done = workers.wait(lambda: workers.handled() >= count, 1800, interval=0.1)
    cpu = {"ingest": cpu_seconds(pids) - cpu0["ingest"], "broker": cpu_seconds([broker_pid]) - cpu0["broker"],
           "postgres": postgres_cpu(pg) - cpu0["postgres"]}
    startup_cpu = cpu0["ingest"]
    workers.stop()
    with psycopg.connect(url) as conn:
        rows, distinct = conn.execute("SELECT count(*), count(DISTINCT (device_id, seq)) FROM board_telemetry "
                                      "WHERE seq >= %s AND seq < %s", (SEQ0, SEQ0 + 10**8)).fetchone()
        letters = conn.execute("SELECT count(*) FROM dead_letter").fetchone()[0]
    return {"rate": count / (done - connected), "rate_from_start": count / (done - started),
            "seconds": done - connected, "startup_s": connected - started, "cpu": cpu, "startup_cpu": startup_cpu,
            "rows": rows, "distinct": distinct, "dead_letters": letters}


def decoded_rows(devices: list[str], per_device: int, seq0: int, later: timedelta) -> list[Record]:
    """The backlog's readings as the ingest decodes them, under other seqs and `later` in device time."""
    policy = ClockPolicy(timedelta(minutes=5), timedelta(days=3), timedelta(days=7))
    topics, payloads = backlog(devices, per_device)
    now = datetime.now(UTC)
    shift = seq0 - SEQ0
    records = []
    for k in range(per_device):
        for d, topic in enumerate(topics):
            r = decode(topic.decode(), payloads[d][k], now, policy)
            at = r.time + later
            records.append(Record(r.device_id, r.table, (r.row[0], at, r.row[2] + shift, *r.row[3:]), at,
                                  r.seq + shift, r.state, r.topic, r.payload))
    return records


def raw_copy(pg: EmbeddedPostgres, records: list[Record]) -> tuple[float, float]:
    """(rows/s, PostgreSQL CPU µs a row) of a COPY straight into board_telemetry, every column the
    ingest writes (no broker, no checks, no staging)."""
    cols = ", ".join(COLUMNS["board_telemetry"])
    with psycopg.connect(pg.url) as conn, conn.cursor() as cur:
        started, cpu = time.perf_counter(), postgres_cpu(pg)
        with cur.copy(f"COPY board_telemetry ({cols}) FROM STDIN") as copy:  # noqa: S608 - fixed column names
            for r in records:
                copy.write_row(r.row)
        conn.commit()
        return len(records) / (time.perf_counter() - started), (postgres_cpu(pg) - cpu) / len(records) * 1e6


def write_costs(pg: EmbeddedPostgres, records: list[Record]) -> list[tuple[str, float]]:
    """What each part of board_telemetry costs PostgreSQL a row: the rows moved from a staging table
    into it (as the ingest's write does: INSERT … SELECT … ORDER BY time ON CONFLICT DO NOTHING), with
    everything, then with the counter guard off, then without each further index in turn, down to
    the unique key alone. Each step in its own transaction, rolled back. (step, CPU µs a row)."""
    cols = ", ".join(COLUMNS["board_telemetry"])
    steps: list[tuple[str, float]] = []
    with psycopg.connect(pg.url, autocommit=True) as conn:
        conn.execute(f"CREATE TEMP TABLE costs_stage AS SELECT {cols} FROM board_telemetry LIMIT 0")  # noqa: S608
        with conn.cursor().copy(f"COPY costs_stage ({cols}) FROM STDIN") as copy:  # noqa: S608 - fixed names
            for r in records:
                copy.write_row(r.row)
        conn.execute("ANALYZE costs_stage")
        indexes = [r[0] for r in conn.execute(
            "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = 'board_telemetry'::regclass "
            "AND NOT indisunique ORDER BY indexrelid")]
        undo = ["ALTER TABLE board_telemetry DISABLE TRIGGER judge_use",
                *(f"DROP INDEX {name}" for name in indexes)]
        labels = ["everything", "without the counter guard", *(f"… and without index {name}" for name in indexes)]
        for n, label in enumerate(labels):
            with conn.transaction(force_rollback=True):
                for statement in undo[:n]:
                    conn.execute(statement)
                cpu = postgres_cpu(pg)
                conn.execute(f"INSERT INTO board_telemetry ({cols}) SELECT {cols} FROM costs_stage "  # noqa: S608
                             "ORDER BY time ON CONFLICT DO NOTHING")
                steps.append((label, (postgres_cpu(pg) - cpu) / len(records) * 1e6))
    return steps


def database_write(pg: EmbeddedPostgres, records: list[Record], batch: int) -> tuple[float, float]:
    """(rows/s, PostgreSQL CPU µs a row) through the ingest's own write (store_batch: staging COPY,
    INSERT … ON CONFLICT, device state), batch after batch."""
    pool = open_pool(pg.url, min_size=1, max_size=1, name="bench-drain")
    try:
        started, cpu = time.perf_counter(), postgres_cpu(pg)
        for i in range(0, len(records), batch):
            store_batch(pool, records[i:i + batch], [])
        return len(records) / (time.perf_counter() - started), (postgres_cpu(pg) - cpu) / len(records) * 1e6
    finally:
        pool.close()


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=300_000)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--publishers", type=int, default=2)
    parser.add_argument("--skip-baselines", action="store_true", help="only the ingest's drain")
    parser.add_argument("--without-counter-guard", action="store_true",
                        help="disable board_telemetry's per-row counter trigger in this run's own database, "
                             "to see the ingest's ceiling apart from the database's per-row cost")
    args = parser.parse_args()
    per_device = args.messages // args.devices
    count = per_device * args.devices
    with tempfile.TemporaryDirectory(prefix="bench-drain-") as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg").start()
        # both sessions (the ingest's and mosquitto_sub's) hold the whole backlog
        broker = EmbeddedMosquitto(Path(tmp) / "mq", max_queued_messages=max(1_000_000, 2 * count),
                                   max_queued_bytes=8 << 30).start()
        try:
            migrate(pg.url)
            devices = register(pg.url, args.devices, counter_guard=not args.without_counter_guard)
            print(f"machine: {os.cpu_count()} cores, load {load()}; {storage(pg.url)}; {count:,} readings queued for "
                  f"{args.devices:,} devices, {args.workers} ingest worker(s)", flush=True)
            if args.without_counter_guard:
                print("board_telemetry's counter guard (trigger judge_use) DISABLED in this run's database")
            env = {**os.environ, "COCKPIT_DATABASE_URL": pg.url, "COCKPIT_MQTT_URL": broker.url,
                   "COCKPIT_LOG_LEVEL": "WARNING",
                   "INGEST_SHARE_GROUP": "drain" if args.workers > 1 else "",
                   "COCKPIT_DATA_DIR": str(Path(tmp) / "data")}
            workers = Workers(env, [f"drain-{i}" for i in range(1, args.workers + 1)])
            workers.start()  # once, to make the persistent sessions
            workers.wait(workers.connected, 60)
            workers.stop()
            if not args.skip_baselines:
                subscriber_session(broker.port)
            taken = publish_backlog(broker.port, devices, per_device, args.publishers)
            print(f"queued: {count:,} readings, taken by the broker at {taken:,.0f} msg/s; load {load()}", flush=True)
            if not args.skip_baselines:
                rate, seconds = broker_drain(broker.port, count)
                print(f"broker → mosquitto_sub -q 1: {rate:,.0f} msg/s ({seconds:.1f} s); load {load()}", flush=True)
            result = ingest_drain(workers, pg, pg.url, count, broker.process.pid)
            cpu = result["cpu"]
            print(f"ingest ({args.workers} worker(s)): {result['rate']:,.0f} msg/s from connected to all stored "
                  f"({result['seconds']:.1f} s; {result['rate_from_start']:,.0f} msg/s counting its "
                  f"{result['startup_s']:.1f} s start-up); load {load()}")
            print(f"        CPU per message: ingest {cpu['ingest'] / count * 1e6:.1f} µs, broker "
                  f"{cpu['broker'] / count * 1e6:.1f} µs, PostgreSQL {cpu['postgres'] / count * 1e6:.1f} µs "
                  f"(ingest start-up {result['startup_cpu']:.1f} s CPU, not counted)")
            print(f"        published {count:,}, stored {result['distinct']:,}, lost {count - result['distinct']}, "
                  f"duplicates {result['rows'] - result['distinct']}, dead letters {result['dead_letters']}",
                  flush=True)
            if not args.skip_baselines:
                # the same readings under other seqs, a day later in device time: each one is the
                # newest of its device when it is written, as in the drain
                records = decoded_rows(devices, per_device, SEQ0 + 2 * 10**8, timedelta(days=1))
                rate, db_us = raw_copy(pg, records)
                print(f"raw COPY into board_telemetry ({count:,} rows, all columns): {rate:,.0f} rows/s, "
                      f"PostgreSQL {db_us:.1f} µs a row")
                records = decoded_rows(devices, per_device, SEQ0 + 4 * 10**8, timedelta(days=2))
                rate, db_us = database_write(pg, records, 2000)
                print(f"the ingest's database write alone (store_batch, 2,000 a batch): {rate:,.0f} rows/s, "
                      f"PostgreSQL {db_us:.1f} µs a row; load {load()}")
                records = decoded_rows(devices, per_device, SEQ0 + 6 * 10**8, timedelta(days=3))
                print("board_telemetry's cost a row, part by part (staging → table, as the ingest moves rows):")
                for label, db_us in write_costs(pg, records):
                    print(f"        {label}: PostgreSQL {db_us:.1f} µs a row")
        finally:
            broker.stop()
            pg.stop("immediate")


if __name__ == "__main__":
    main()
