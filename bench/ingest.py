"""Ingest benchmark: devices publish through the real broker at a set rate; what is stored, how fast.

    python -m bench.ingest --devices 1000 --rate 10000 --seconds 60
    python -m bench.ingest --quick

Everything runs on this machine: its own PostgreSQL and Mosquitto, the ingest as a
separate process (one worker, or --workers 2 on a shared subscription), and publisher
processes pacing QoS 1 readings. Printed: sustained messages/s stored, end-to-end
latency p50/p99 (device time at publish → the row's transaction time), loss,
duplicates, CPU seconds per process; and in the same run, the load generator's own
ceiling (publishing flat out to `mosquitto_sub -q 1`: the most this machine's broker
and publishers deliver, so a rate below it measures the ingest), raw COPY rows/s into
the same table, and a naive one-INSERT-per-message subscriber.

The publishers speak MQTT on a plain socket (`RawPublisher`): a paho publisher spends
~100 µs of Python per message and tops out near 10,000 msg/s, which used to be the
ceiling of this benchmark instead of the ingest (`--publisher paho` keeps it for comparison).
"""

import argparse
import multiprocessing as mp
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from core.db import migrate
from core.mqtt import release
from ops.embedded import EmbeddedMosquitto, EmbeddedPostgres, free_port

# A board's reading; `use` is its cumulative active-use counter, which the contract bounds (a
# century of seconds) and the counter guard judges against the time that passed.
PAYLOAD = ('{{"v":1,"ts":"{ts}","seq":{seq},"kind":"board","power_on":true,"screen_on":true,'
           '"active_use_s":{use},"cpu_temp_c":51.5,"cpu_load":0.4,"mem_load":0.6,"disk_used_pct":55.0}}')
TOPIC_FILTER = "edu/dev/+/telemetry"


def load() -> str:
    """The machine's load averages (1, 5, 15 min): other work on it shifts every figure."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def storage(url: str) -> str:
    """The database a run measured: PostgreSQL's version and TimescaleDB's, when the schema uses it."""
    with psycopg.connect(url) as conn:
        server = conn.execute("SHOW server_version").fetchone()[0]
        timescaledb = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
    return f"PostgreSQL {server}" + (f" with TimescaleDB {timescaledb[0]}" if timescaledb else ", no TimescaleDB")


def register(url: str, devices: int, *, counter_guard: bool = True) -> list[str]:
    """A school with `devices` registered boards; without the counter guard, board_telemetry's
    per-row trigger is disabled in this (throwaway) database."""
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
        if not counter_guard:
            conn.execute("ALTER TABLE board_telemetry DISABLE TRIGGER judge_use")
    return ids


def _varint(n: int) -> bytes:
    """MQTT's variable-length integer (the remaining length of a packet)."""
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (128 if n else 0))
        if not n:
            return bytes(out)


class RawPublisher:
    """A QoS 1 publisher speaking MQTT 3.1.1 on a plain socket: frames built with byte
    operations, written in large writes, PUBACKs counted in bulk.

    A paho publisher spends ~100 µs of Python per message and tops out near 10,000 msg/s;
    this one spends a few, so the broker, not the load generator, is the ceiling. The broker
    acknowledges a client's QoS 1 publishes in the order it received them: every PUBACK's
    packet id is checked against that order, so a lost or reordered acknowledgement fails
    the run instead of passing unnoticed.
    """

    WINDOW = 20_000  # publishes in flight (packet ids are 16 bits)

    def __init__(self, port: int, client_id: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        cid = client_id.encode()
        body = b"\x00\x04MQTT\x04\x02\x00\x00" + len(cid).to_bytes(2, "big") + cid  # clean session, no keepalive
        self.sock.sendall(b"\x10" + _varint(len(body)) + body)
        connack = self._exactly(4)
        if connack[:2] != b"\x20\x02" or connack[3] != 0:
            raise ConnectionError(f"broker refused the publisher: {connack!r}")
        self.sent = self.acked = 0
        self._rest = b""

    def _exactly(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("broker closed the connection")
            data += chunk
        return data

    def publish(self, messages: list[tuple[bytes, bytes]]) -> None:
        """Publish (topic, payload) pairs at QoS 1, keeping at most WINDOW unacknowledged."""
        frames, mid = [], self.sent
        for topic, payload in messages:
            mid = mid % 65535 + 1
            frames.append(b"\x32" + _varint(len(topic) + 4 + len(payload)) + len(topic).to_bytes(2, "big")
                          + topic + mid.to_bytes(2, "big") + payload)
        while self.sent + len(frames) - self.acked > self.WINDOW:
            self._read_acks(block=True)
        self.sock.settimeout(60)
        self.sock.sendall(b"".join(frames))
        self.sent += len(frames)
        self._read_acks(block=False)

    def _read_acks(self, block: bool) -> None:
        self.sock.settimeout(60 if block else 0.0)  # blocked a minute: the broker is gone
        try:
            data = self.sock.recv(1 << 16)
        except BlockingIOError:
            return
        if not data:
            raise ConnectionError("broker closed the connection")
        data = self._rest + data
        whole = len(data) - len(data) % 4
        self._rest = data[whole:]
        for command, length, mid in struct.iter_unpack("!BBH", data[:whole]):
            self.acked += 1
            if command != 0x40 or length != 2 or mid != (self.acked - 1) % 65535 + 1:
                raise ConnectionError(f"unexpected acknowledgement {command:#x} {mid} after {self.acked - 1}")

    def flush(self) -> None:
        """Wait until the broker acknowledged everything published."""
        while self.acked < self.sent:
            self._read_acks(block=True)

    def close(self) -> None:
        """Disconnect cleanly."""
        self.sock.settimeout(10)
        self.sock.sendall(b"\xe0\x00")
        self.sock.close()


def publish_raw(port: int, devices: list[str], rate: float, seconds: float, seq0: int, sent: mp.Value,
                count: int = 0) -> None:
    """Publish readings round-robin over the devices at `rate` messages/s for `seconds` (rate 0: `count`
    readings as fast as the broker takes them), each stamped with the time it is published."""
    publisher = RawPublisher(port, f"bench-pub-{uuid.uuid4().hex[:8]}")
    topics = [f"edu/dev/{d}/telemetry".encode() for d in devices]
    start, n = time.perf_counter(), 0
    while True:
        elapsed = time.perf_counter() - start
        due = (int(elapsed * rate) if rate else count) - n
        if (rate and elapsed >= seconds) or (not rate and due <= 0):
            break
        if due <= 0:
            time.sleep(0.002)
            continue
        ts, use = datetime.now(UTC).isoformat(), 1000 + int(elapsed)
        chunk = range(n, n + min(due, 2000))
        publisher.publish([(topics[i % len(topics)], PAYLOAD.format(ts=ts, seq=seq0 + i, use=use).encode())
                           for i in chunk])
        n += len(chunk)
    publisher.flush()
    publisher.close()
    with sent.get_lock():
        sent.value += n


def publish_paho(port: int, devices: list[str], rate: float, seconds: float, seq0: int, sent: mp.Value,
                 count: int = 0) -> None:
    """The same with paho (the earlier load generator, kept for comparison)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{uuid.uuid4().hex[:8]}",
                         protocol=mqtt.MQTTv311)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    start, n = time.perf_counter(), 0
    while True:
        elapsed = time.perf_counter() - start
        due = (int(elapsed * rate) if rate else count) - n
        if (rate and elapsed >= seconds) or (not rate and due <= 0):
            break
        for _ in range(min(due, 500)):
            ts, use = datetime.now(UTC).isoformat(), 1000 + int(elapsed)
            client.publish(f"edu/dev/{devices[n % len(devices)]}/telemetry",
                           PAYLOAD.format(ts=ts, seq=seq0 + n, use=use), qos=1)
            n += 1
        if due <= 0:
            time.sleep(0.001)
    while client._out_messages:  # every QoS 1 message acknowledged by the broker
        time.sleep(0.05)
    client.disconnect()
    release(client)
    with sent.get_lock():
        sent.value += n


PUBLISHERS = {"raw": publish_raw, "paho": publish_paho}


def publish_all(kind: str, port: int, devices: list[str], rate: float, seconds: float, seq0: int,
                publishers: int, count: int = 0) -> int:
    """Run `publishers` processes sharing the devices and the rate (or the count); how many they published."""
    sent = mp.Value("l", 0)
    shares = [devices[i::publishers] for i in range(publishers)]
    procs = [mp.Process(target=PUBLISHERS[kind], args=(port, share, rate / publishers, seconds, seq0 + i * 10**8,
                                                        sent, count // publishers))
             for i, share in enumerate(shares)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        if p.exitcode:
            raise RuntimeError(f"a publisher failed (exit code {p.exitcode})")
    return sent.value


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


def postgres_cpu(pg: EmbeddedPostgres) -> float:
    """CPU seconds this cluster used so far: its postmaster, the children it has reaped, and the
    children alive now (other clusters on the machine are not counted)."""
    postmaster = int((pg.data / "postmaster.pid").read_text().split("\n", 1)[0])
    tick = os.sysconf("SC_CLK_TCK")
    fields = Path(f"/proc/{postmaster}/stat").read_text().rsplit(")", 1)[1].split()
    total = sum(int(f) for f in fields[11:15]) / tick  # utime, stime, cutime, cstime
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        if int(fields[1]) == postmaster:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


class Workers:
    """Ingest worker processes with their health endpoints."""

    def __init__(self, env: dict, ids: list[str]) -> None:
        self.env = env
        self.ids = ids
        self.ports = [free_port() for _ in ids]
        self.procs: list[subprocess.Popen] = []

    def start(self) -> None:
        """Start every worker."""
        self.procs = [subprocess.Popen([sys.executable, "-m", "ops.cli", "ingest", "--worker-id", wid],
                                       env={**self.env, "INGEST_HEALTH_PORT": str(port)})
                      for wid, port in zip(self.ids, self.ports, strict=True)]

    def stop(self) -> None:
        """Stop every worker cleanly (its persistent session stays)."""
        for p in self.procs:
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            p.wait(60)

    @property
    def pids(self) -> list[int]:
        """The workers' process ids."""
        return [p.pid for p in self.procs]

    def _get(self, port: int, path: str) -> str | None:
        try:
            return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5).text
        except httpx.TransportError:
            return None

    def connected(self) -> bool:
        """True when every worker holds its subscriptions."""
        return all('"broker_connected": true' in (self._get(port, "/readyz") or "") for port in self.ports)

    def _count(self, *metrics: str) -> int:
        total = 0
        for port in self.ports:
            for line in (self._get(port, "/metrics") or "").splitlines():
                if line.startswith(metrics):
                    total += int(float(line.rsplit(" ", 1)[1]))
        return total

    def stored(self) -> int:
        """Rows stored so far, by the workers' own counters."""
        return self._count("ingest_rows_stored_total{")

    def handled(self) -> int:
        """Messages done with so far: stored, dead-lettered or skipped as duplicates (a bench whose
        payloads the contract refuses must end, and say so, rather than wait for rows)."""
        return self._count("ingest_rows_stored_total{", "ingest_dead_letters_total{", "ingest_duplicates_total ")

    def wait(self, condition, timeout: float, interval: float = 0.02) -> float:
        """Poll until condition() holds; the moment it did (perf_counter)."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError("the ingest did not get there in time")
            if any(p.poll() is not None for p in self.procs):
                raise RuntimeError("an ingest worker exited")
            time.sleep(interval)
        return time.perf_counter()


def stored(url: str, since_seq: int) -> tuple[int, int]:
    """(rows, distinct (device, seq)) stored from this run."""
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*), count(DISTINCT (device_id, seq)) FROM board_telemetry WHERE seq >= %s",
                            (since_seq,)).fetchone()


def run_load(pg: EmbeddedPostgres, broker: EmbeddedMosquitto, devices: list[str], args) -> dict:
    """The real ingest under a paced load: throughput, latency, loss, duplicates, CPU."""
    seq0 = int(time.time() * 1000) * 1000
    group = f"bench{uuid.uuid4().hex[:6]}" if args.workers > 1 else ""
    # Each bench device sends far more than a real one: keep the flood limit's work in the
    # measurement, with a bucket no bench device empties.
    env = {**os.environ, "COCKPIT_DATABASE_URL": pg.url, "COCKPIT_MQTT_URL": broker.url, "INGEST_SHARE_GROUP": group,
           "COCKPIT_LOG_LEVEL": "WARNING", "INGEST_DEVICE_RATE_PER_S": str(2 * args.rate / len(devices)),
           "INGEST_DEVICE_BURST": str(int(args.rate * args.seconds / len(devices)) + 1000),
           "COCKPIT_DATA_DIR": str(broker.root.parent / "data")}
    workers = Workers(env, [f"bench-{seq0}-{i}" for i in range(args.workers)])
    workers.start()
    workers.wait(workers.connected, 60)
    pids = {"ingest": workers.pids, "broker": [broker.process.pid]}
    cpu0 = {k: cpu_seconds(v) for k, v in pids.items()} | {"postgres": postgres_cpu(pg)}
    started = time.perf_counter()
    sent = publish_all(args.publisher, broker.port, devices, args.rate, args.seconds, seq0, args.publishers)
    published_at = time.perf_counter() - started
    drained = workers.wait(lambda: workers.handled() >= sent, 900, interval=0.2)
    cpu = {k: round(cpu_seconds(v) - cpu0[k], 1) for k, v in pids.items()}
    cpu["postgres"] = round(postgres_cpu(pg) - cpu0["postgres"], 1)
    workers.stop()
    rows, distinct = stored(pg.url, seq0)
    with psycopg.connect(pg.url) as conn:
        letters = conn.execute("SELECT count(*) FROM dead_letter").fetchone()[0]
        p50, p99 = conn.execute(
            "SELECT percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM received_at - time)) "
            "FROM board_telemetry WHERE seq >= %s", (seq0,)).fetchone()[0]
    drain_s = drained - started
    p50, p99 = (p50 or 0.0), (p99 or 0.0)
    return {"sent": sent, "stored": distinct, "duplicates": rows - distinct, "lost": sent - distinct - letters,
            "dead_letters": letters,
            "publish_s": round(published_at, 1), "drain_s": round(drain_s, 1), "offered_per_s": round(sent / published_at),
            "stored_per_s": round(distinct / drain_s), "p50_s": round(p50, 3), "p99_s": round(p99, 3), "cpu_s": cpu,
            "ingest_us": cpu["ingest"] / max(distinct, 1) * 1e6}


def generator_ceiling(kind: str, broker: EmbeddedMosquitto, devices: list[str], count: int, publishers: int) -> float:
    """Messages/s the publishers deliver, flat out, through the broker to `mosquitto_sub -q 1`."""
    count -= count % publishers  # each publisher its equal share
    sub = subprocess.Popen(["mosquitto_sub", "-p", str(broker.port), "-q", "1", "-t", TOPIC_FILTER,
                            "-C", str(count), "-W", "300", "-i", f"bench-ceiling-{uuid.uuid4().hex[:6]}"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)  # subscribed (mosquitto_sub says nothing when it is)
    started = time.perf_counter()
    publish_all(kind, broker.port, devices, 0, 0, 5 * 10**14, publishers, count)
    sub.wait(300)
    return count / (time.perf_counter() - started)


def raw_copy(url: str, devices: list[str], rows: int) -> float:
    """Rows/s COPYed straight into board_telemetry (no broker, no validation), each row its
    device's newest, as live readings are (the counter guard judges each against the one before)."""
    now = datetime.now(UTC)
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        started = time.perf_counter()
        with cur.copy("COPY board_telemetry (device_id, time, seq, power_on, screen_on, active_use_s) FROM STDIN") as c:
            for i in range(rows):
                c.write_row((devices[i % len(devices)], now + timedelta(milliseconds=i), 9 * 10**15 + i, True, True, i))
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
    client.subscribe(TOPIC_FILTER, 1)
    client.loop_start()
    time.sleep(0.5)
    started = time.perf_counter()
    publish_all("raw", broker.port, devices, rate, seconds, 7 * 10**14, 1)
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
    parser.add_argument("--publisher", choices=sorted(PUBLISHERS), default="raw")
    parser.add_argument("--quick", action="store_true", help="10 s at 2,000 messages/s")
    parser.add_argument("--skip-baselines", action="store_true")
    parser.add_argument("--without-counter-guard", action="store_true",
                        help="disable board_telemetry's per-row counter trigger in this run's own database, "
                             "to see the ingest apart from the database's per-row cost")
    args = parser.parse_args()
    if args.quick:
        args.rate, args.seconds = 2000, 10
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg").start()
        broker = EmbeddedMosquitto(Path(tmp) / "mq").start()
        try:
            migrate(pg.url)
            devices = register(pg.url, args.devices, counter_guard=not args.without_counter_guard)
            print(f"machine: {os.cpu_count()} cores, load {load()}; {storage(pg.url)}; {args.devices} devices, target "
                  f"{args.rate:,.0f} msg/s for {args.seconds:.0f}s, {args.workers} ingest worker(s), "
                  f"{args.publishers} {args.publisher} publisher processes"
                  + ("; board_telemetry's counter guard DISABLED" if args.without_counter_guard else ""), flush=True)
            if not args.skip_baselines:
                count = int(min(args.rate * args.seconds, 300_000))
                ceiling = generator_ceiling(args.publisher, broker, devices, count, args.publishers)
                print(f"load generator's ceiling, flat out through the broker to mosquitto_sub -q 1: {ceiling:,.0f} "
                      f"msg/s ({count:,} readings); target / ceiling = {args.rate / ceiling:.2f}; load {load()}",
                      flush=True)
            r = run_load(pg, broker, devices, args)
            print(f"ingest: sent {r['sent']:,} (offered {r['offered_per_s']:,} msg/s), stored {r['stored']:,}, "
                  f"lost {r['lost']}, duplicates {r['duplicates']}, dead letters {r['dead_letters']}")
            print(f"        sustained {r['stored_per_s']:,} msg/s stored (= data points/s: one row a reading); "
                  f"publishing took {r['publish_s']}s, all stored after {r['drain_s']}s")
            print(f"        latency publish→commit p50 {r['p50_s']}s, p99 {r['p99_s']}s")
            print(f"        CPU seconds: {r['cpu_s']}; ingest {r['ingest_us']:.1f} µs a message; load {load()}",
                  flush=True)
            if not args.skip_baselines:
                print(f"raw COPY into board_telemetry: {raw_copy(pg.url, devices, 200_000):,.0f} rows/s")
                print(f"naive subscriber, one INSERT per message: "
                      f"{naive(pg.url, broker, devices, args.rate, min(args.seconds, 10)):,.0f} msg/s")
        finally:
            broker.stop()
            pg.stop("immediate")


if __name__ == "__main__":
    main()
