"""`cockpit up`'s supervisor: it restarts what dies — services, the broker, the database — with a
back-off that resets after a healthy run, and reaps what it restarts. No test here waits on time:
the back-off runs on a fake clock, and real processes are awaited by condition."""

import os
import signal
import subprocess
import sys
import threading

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from core.credentials import API, MONITOR, PATROL, derived_password, ingest_account
from core.mqtt import release
from core.settings import PlatformSettings
from ops.embedded import EmbeddedPostgres
from ops.stack import Stack, Supervisor, Unit
from tests.fixtures.devices import wait_for


class Clock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Program:
    """A tiny child process, started again and again."""

    def __init__(self, code: str) -> None:
        self.code = code
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", self.code])
        self.starts += 1

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def dead(self) -> bool:
        return not self.alive()


def test_the_back_off_doubles_for_short_runs_and_resets_after_a_healthy_one():
    clock, said = Clock(), []
    program = Program("raise SystemExit(3)")
    program.start()
    supervisor = Supervisor([Unit("flaky", program.alive, program.start)], healthy_s=30, base_s=1, max_s=8,
                            clock=clock, say=said.append)
    unit = supervisor.units[0]
    for delay in (1, 2, 4, 8, 8):  # each run is short: the wait doubles, up to the maximum
        wait_for(program.dead, timeout=30)
        starts = program.starts
        supervisor.check()
        assert unit.died_at == clock.now and supervisor.delay(unit) == delay
        clock.now += delay - 0.5
        supervisor.check()
        assert program.starts == starts  # still waiting
        clock.now += 0.5
        supervisor.check()
        assert program.starts == starts + 1 and unit.died_at is None

    program.code = "import time; time.sleep(600)"  # the next run is a healthy one
    wait_for(program.dead, timeout=30)
    supervisor.check()
    clock.now += 8
    supervisor.check()
    assert program.alive()
    clock.now += 30  # as long as the healthy period
    supervisor.check()
    assert program.alive() and unit.died_at is None
    program.process.kill()
    wait_for(program.dead, timeout=30)
    supervisor.check()
    assert supervisor.delay(unit) == 1  # reset
    clock.now += 1
    supervisor.check()
    assert program.alive()
    program.process.kill()
    program.process.wait()
    assert any("restarting in 8s" in line for line in said) and said[-1] == "  flaky restarted (#7)"


def test_a_start_that_fails_is_retried_with_a_longer_wait():
    clock, attempts = Clock(), []

    def start() -> None:
        attempts.append(clock.now)
        if len(attempts) < 3:
            raise RuntimeError("port in use")

    supervisor = Supervisor([Unit("broker", lambda: len(attempts) >= 3, start)], base_s=1, max_s=60,
                            clock=clock, say=lambda _text: None)
    for _ in range(10):
        supervisor.check()
        clock.now += 1
    assert attempts == [1001.0, 1003.0, 1007.0]  # found dead at 1000: +1 s, failed: +2 s, failed: +4 s


def _connect(port: int, username: str, password: str) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=username, protocol=mqtt.MQTTv5)
    client.username_pw_set(username, password)
    client.connect("127.0.0.1", port)
    client.loop_start()
    wait_for(client.is_connected, timeout=10)
    return client


def test_up_restarts_its_broker_killed_with_kill_9_on_the_same_port_with_its_data(database_url, db, registry,
                                                                                   tmp_path):
    registry.area()
    registry.device(registry.school())
    stack = Stack(PlatformSettings(database_url=database_url, mqtt_url=None, data_dir=tmp_path, env="test"),
                  scale="demo", api_port=0, dashboard_port=0, simulate=False)
    stop = threading.Event()
    try:
        url, secret = stack._broker(database_url)
        broker = stack.services[-1]
        port, old_pid = broker.port, broker.process.pid
        assert [u.name for u in stack.supervisor.units] == ["mosquitto"]

        # the services' accounts under `up`: one each, passwords from the kept secret
        children = {c.name: c.env for c in stack._children(database_url, url, secret)}
        own = f"{ingest_account('1')}:{derived_password(secret, ingest_account('1'))}@"
        assert own in children["ingest"]["COCKPIT_MQTT_URL"]
        assert f"{PATROL}:" in children["patrol"]["COCKPIT_MQTT_URL"] and f"{API}:" in children["api"]["COCKPIT_MQTT_URL"]
        assert "@" not in children["dashboard"]["COCKPIT_MQTT_URL"] + children["rollups"]["COCKPIT_MQTT_URL"]

        # data the broker must keep: a retained notice, saved to disk before the crash
        saved = (broker.root / "mosquitto.db")
        before = saved.stat().st_mtime_ns if saved.exists() else 0
        patrol = _connect(port, PATROL, derived_password(secret, PATROL))
        patrol.publish("edu/ops/alerts", b"kept", qos=1, retain=True).wait_for_publish(10)
        patrol.disconnect()
        release(patrol)
        wait_for(lambda: saved.exists() and saved.stat().st_mtime_ns > before, timeout=30)  # autosave ran

        stack.supervisor.base_s = 0.1
        supervisor = threading.Thread(target=stack.supervisor.run, args=(stop, 0.05))
        supervisor.start()
        os.kill(old_pid, signal.SIGKILL)
        unit = stack.supervisor.units[0]
        wait_for(lambda: unit.restarts >= 1 and unit.died_at is None, timeout=30)  # started and listening
        assert broker.running and broker.process.pid != old_pid
        with pytest.raises(ChildProcessError):  # the killed broker was reaped, not left a zombie
            os.waitpid(old_pid, os.WNOHANG)
        assert broker.port == port

        received = []
        monitor = _connect(port, MONITOR, derived_password(secret, MONITOR))
        monitor.on_message = lambda _c, _u, m: received.append(m.payload)
        monitor.subscribe("edu/ops/alerts", 1)
        wait_for(lambda: received == [b"kept"], timeout=10)
        monitor.disconnect()
        release(monitor)
    finally:
        stop.set()
        stack.shutdown()


@pytest.mark.slow
def test_a_database_killed_with_kill_9_is_restarted_on_the_same_port_with_its_data(tmp_path):
    pg = EmbeddedPostgres(tmp_path / "pg").start()
    stop = threading.Event()
    try:
        with psycopg.connect(pg.url, autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (id int)")
            conn.execute("INSERT INTO kept VALUES (1)")
        port = pg.port
        postmaster = int((pg.data / "postmaster.pid").read_text().split()[0])
        supervisor = Supervisor([Unit("postgres", lambda: pg.running, pg.start)], base_s=0.1,
                                say=lambda _text: None)
        runner = threading.Thread(target=supervisor.run, args=(stop, 0.05))
        runner.start()
        os.kill(postmaster, signal.SIGKILL)

        def answers() -> bool:
            try:
                with psycopg.connect(pg.url, connect_timeout=2) as conn:
                    return conn.execute("SELECT count(*) FROM kept").fetchone() == (1,)
            except psycopg.OperationalError:
                return False

        wait_for(lambda: supervisor.units[0].restarts >= 1 and answers(), timeout=90)
        assert pg.port == port and pg.running
    finally:
        stop.set()
        pg.stop("immediate")
