"""Ingest benchmark: devices publish through the real broker at a set rate; what is stored, how fast.

    python -m bench.ingest --devices 1000 --rate 10000 --seconds 60
    python -m bench.ingest --quick

Everything runs on this machine: its own PostgreSQL and Mosquitto, the ingest as a
separate process (one worker, or --workers 2 on a shared subscription), and publisher
processes pacing QoS 1 readings. Printed: sustained messages/s stored, end-to-end
latency p50/p99 (device time at publish → database commit), loss, duplicates, CPU
seconds per process; and on the same load, the raw broker rate (mosquitto_sub to
/dev/null), raw COPY rows/s into the same table, and a naive one-INSERT-per-message
subscriber.
"""

import argparse
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from core.db import migrate
from core.mqtt import release
from ops.embedded import EmbeddedMosquitto, EmbeddedPostgres

PAYLOAD = ('{{"v":1,"ts":"{ts}","seq":{seq},"kind":"board","power_on":true,"screen_on":true,'
           '"active_use_s":{seq},"cpu_temp_c":51.5,"cpu_load":0.4,"mem_load":0.6,"disk_used_pct":55.0}}')


def register(url: str, devices: int) -> list[str]:
    """A school with `devices` registered boards."""
    ids = [f"BENCH-{i:06d}" for i in range(devices)]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO province VALUES ('420000', '湖北省') ON CONFLICT DO NOTHING")
        conn.execute("INSERT INTO city VALUES ('421300', '420000', '随州市') ON CONFLICT DO NOTHING")
        conn.execute("INSERT INTO county VALUES ('421303', '421300', '420000', '曾都区') ON CONFLICT DO NOTHING")
        conn.execute("INSERT INTO school (code, name, county_code, city_code, province_code, locale, stage, classes, "
                     "students, teachers) VALUES ('4213030000', '基准学校', '421303', '421300', '420000', 'urban', "
                     "'primary', 1, 1, 1) ON CONFLICT DO NOTHING")
        with conn.cursor().copy("COPY device_all (id, kind, school_code, room, vendor, model) FROM STDIN") as copy:
            for d in ids:
                copy.write_row((d, "board", "4213030000", "r", "v", "m"))
    return ids


def publish(port: int, devices: list[str], rate: float, seconds: float, seq0: int, sent: mp.Value) -> None:
    """Publish readings round-robin over the devices at `rate` messages/s for `seconds`."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{uuid.uuid4().hex[:8]}",
                         protocol=mqtt.MQTTv311)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    start = time.perf_counter()
    n = 0
    while (elapsed := time.perf_counter() - start) < seconds:
        due = int(elapsed * rate) - n
        for _ in range(min(due, 500)):
            device = devices[n % len(devices)]
            ts = datetime.now(UTC).isoformat()
            client.publish(f"edu/dev/{device}/telemetry", PAYLOAD.format(ts=ts, seq=seq0 + n), qos=1)
            n += 1
        if due <= 0:
            time.sleep(0.001)
    while client._out_messages:  # every QoS 1 message acknowledged by the broker
        time.sleep(0.05)
    client.disconnect()
    release(client)
    with sent.get_lock():
        sent.value += n


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds used so far by these processes."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (FileNotFoundError, IndexError):
            pass
    return total


def postgres_pids() -> list[int]:
    """Every postgres server process on the machine (ours is the only busy one)."""
    out = subprocess.run(["pgrep", "-f", "postgres"], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]


def stored(url: str, since_seq: int) -> tuple[int, int]:
    """(rows, distinct (device, seq)) stored from this run."""
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*), count(DISTINCT (device_id, seq)) FROM board_telemetry WHERE seq >= %s",
                            (since_seq,)).fetchone()


def run_load(url: str, broker: EmbeddedMosquitto, devices: list[str], rate: float, seconds: float,
             workers: int, publishers: int) -> dict:
    """The real ingest under a paced load: throughput, latency, loss, duplicates, CPU."""
    seq0 = int(time.time() * 1000) * 1000
    group = f"bench{uuid.uuid4().hex[:6]}" if workers > 1 else ""
    # Each bench device sends far more than a real one: keep the flood limit's work in the
    # measurement, with a bucket no bench device empties.
    env = {**os.environ, "COCKPIT_DATABASE_URL": url, "COCKPIT_MQTT_URL": broker.url, "INGEST_SHARE_GROUP": group,
           "COCKPIT_LOG_LEVEL": "WARNING", "INGEST_DEVICE_RATE_PER_S": str(2 * rate / len(devices)),
           "INGEST_DEVICE_BURST": str(int(rate * seconds / len(devices)) + 1000)}
    procs = [subprocess.Popen([sys.executable, "-m", "ops.cli", "ingest", "--worker-id", f"bench-{seq0}-{i}"],
                              env=env) for i in range(workers)]
    time.sleep(3)
    pids = {"ingest": [p.pid for p in procs], "broker": [broker.process.pid], "postgres": postgres_pids()}
    cpu0 = {k: cpu_seconds(v) for k, v in pids.items()}
    sent = mp.Value("l", 0)
    shares = [devices[i::publishers] for i in range(publishers)]
    pubs = [mp.Process(target=publish, args=(broker.port, share, rate / publishers, seconds, seq0 + i * 10**8, sent))
            for i, share in enumerate(shares)]
    started = time.perf_counter()
    for p in pubs:
        p.start()
    for p in pubs:
        p.join()
    published_at = time.perf_counter() - started
    deadline = time.monotonic() + 120
    while stored(url, seq0)[1] < sent.value and time.monotonic() < deadline:
        time.sleep(0.5)
    drained_at = time.perf_counter() - started
    cpu = {k: round(cpu_seconds(v) - cpu0[k], 1) for k, v in pids.items()}
    for p in procs:
        p.terminate()
        p.wait(20)
    rows, distinct = stored(url, seq0)
    with psycopg.connect(url) as conn:
        p50, p99 = conn.execute(
            "SELECT percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM received_at - time)) "
            "FROM board_telemetry WHERE seq >= %s", (seq0,)).fetchone()[0]
    return {"sent": sent.value, "stored": distinct, "duplicates": rows - distinct, "lost": sent.value - distinct,
            "publish_s": round(published_at, 1), "drain_s": round(drained_at, 1),
            "stored_per_s": round(distinct / drained_at), "p50_s": round(p50, 3), "p99_s": round(p99, 3), "cpu_s": cpu}


def raw_broker(broker: EmbeddedMosquitto, devices: list[str], rate: float, seconds: float, publishers: int) -> float:
    """Messages/s delivered to a plain mosquitto_sub writing to /dev/null on the same load."""
    sub = subprocess.Popen(["mosquitto_sub", "-p", str(broker.port), "-q", "1", "-t", "edu/dev/+/telemetry"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    time.sleep(0.5)
    sent = mp.Value("l", 0)
    shares = [devices[i::publishers] for i in range(publishers)]
    pubs = [mp.Process(target=publish, args=(broker.port, s, rate / publishers, seconds, i * 10**8, sent))
            for i, s in enumerate(shares)]
    started = time.perf_counter()
    for p in pubs:
        p.start()
    received = 0
    for _line in sub.stdout:
        received += 1
        if received >= int(rate * seconds * 0.999) or time.perf_counter() - started > seconds + 30:
            break
    elapsed = time.perf_counter() - started
    sub.kill()
    for p in pubs:
        p.join()
    return received / elapsed


def raw_copy(url: str, devices: list[str], rows: int) -> float:
    """Rows/s COPYed straight into board_telemetry (no broker, no validation)."""
    now = datetime.now(UTC)
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        started = time.perf_counter()
        with cur.copy("COPY board_telemetry (device_id, time, seq, power_on, screen_on, active_use_s) FROM STDIN") as c:
            for i in range(rows):
                c.write_row((devices[i % len(devices)], now, 9 * 10**15 + i, True, True, i))
        conn.commit()
        return rows / (time.perf_counter() - started)


def naive(url: str, broker: EmbeddedMosquitto, devices: list[str], rate: float, seconds: float) -> float:
    """Messages/s stored by a subscriber that INSERTs each message in its own transaction."""
    conn = psycopg.connect(url, autocommit=True)
    count = [0]

    def on_message(_c, _u, msg):
        import json

        body = json.loads(msg.payload)
        conn.execute("INSERT INTO board_telemetry (device_id, time, seq, power_on, screen_on, active_use_s) "
                     "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                     (msg.topic.split("/")[2], body["ts"], body["seq"] + 8 * 10**15, True, True, body["seq"]))
        count[0] += 1

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-naive")
    client.on_message = on_message
    client.connect("127.0.0.1", broker.port)
    client.subscribe("edu/dev/+/telemetry", 1)
    client.loop_start()
    time.sleep(0.5)
    sent = mp.Value("l", 0)
    pub = mp.Process(target=publish, args=(broker.port, devices, rate, seconds, 7 * 10**14, sent))
    started = time.perf_counter()
    pub.start()
    pub.join()
    elapsed = time.perf_counter() - started
    client.disconnect()
    release(client)
    conn.close()
    return count[0] / elapsed


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=10000)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--publishers", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="10 s at 2,000 messages/s")
    parser.add_argument("--skip-baselines", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.rate, args.seconds = 2000, 10
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg").start()
        broker = EmbeddedMosquitto(Path(tmp) / "mq").start()
        try:
            migrate(pg.url)
            devices = register(pg.url, args.devices)
            print(f"machine: {os.cpu_count()} cores; {args.devices} devices, target {args.rate:,.0f} msg/s "
                  f"for {args.seconds:.0f}s, {args.workers} ingest worker(s), {args.publishers} publisher processes")
            result = run_load(pg.url, broker, devices, args.rate, args.seconds, args.workers, args.publishers)
            print(f"ingest: sent {result['sent']:,}, stored {result['stored']:,}, lost {result['lost']}, "
                  f"duplicates {result['duplicates']}")
            print(f"        sustained {result['stored_per_s']:,} msg/s stored (= data points/s: one row a reading); "
                  f"publishing took {result['publish_s']}s, all stored after {result['drain_s']}s")
            print(f"        latency publish→commit p50 {result['p50_s']}s, p99 {result['p99_s']}s")
            print(f"        CPU seconds: {result['cpu_s']}")
            if not args.skip_baselines:
                broker_rate = raw_broker(broker, devices, args.rate, min(args.seconds, 20), args.publishers)
                print(f"raw broker (mosquitto_sub > /dev/null): {broker_rate:,.0f} msg/s; "
                      f"ingest / broker = {result['stored_per_s'] / broker_rate:.2f}")
                print(f"raw COPY into board_telemetry: {raw_copy(pg.url, devices, 200_000):,.0f} rows/s")
                print(f"naive subscriber, one INSERT per message: "
                      f"{naive(pg.url, broker, devices, args.rate, min(args.seconds, 10)):,.0f} msg/s")
        finally:
            broker.stop()
            pg.stop("immediate")


if __name__ == "__main__":
    main()
