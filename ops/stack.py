"""The local stack behind `cockpit up`: embedded services, migrations, seed, and a supervisor.

Every service runs as its own child process (one job each), exactly as in production;
this module only starts them, restarts one that dies — the embedded PostgreSQL and
Mosquitto as well as the services — and stops all on Ctrl-C. Each service that talks to
the broker logs in with its own account (core.credentials).
"""

import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import httpx
import psycopg

from core.db import migrate
from core.process import terminate
from core.settings import PlatformSettings

log = logging.getLogger(__name__)


@dataclass
class Child:
    """A supervised service process."""

    name: str
    args: list[str]
    env: dict[str, str]
    process: subprocess.Popen | None = None

    def start(self, log_dir: Path) -> None:
        """Start (or restart) the process, its output going to a log file."""
        out = open(log_dir / f"{self.name}.log", "ab")  # noqa: SIM115 - owned by the child for its life
        self.process = subprocess.Popen([sys.executable, "-m", "ops.cli", *self.args], env=self.env,
                                        stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def alive(self) -> bool:
        """True while the process runs (asking reaps it once it has exited)."""
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 10) -> None:
        """Ask the process to stop, and kill it if it does not."""
        terminate(self.process, timeout)


@dataclass
class Unit:
    """Something the supervisor keeps running: a service process, the broker or the database."""

    name: str
    alive: Callable[[], bool]
    start: Callable[[], object]
    started_at: float = 0.0
    died_at: float | None = None
    failures: int = 0  # consecutive runs shorter than the supervisor's healthy period
    restarts: int = 0


class Supervisor:
    """Restarts units that die, after a back-off that doubles with each short run.

    A run that lasted `healthy_s` or longer resets the back-off, so a service that crashes
    once a day restarts after `base_s`, while one that cannot start waits up to `max_s`
    between attempts. A unit whose start fails counts as another short run.
    """

    def __init__(self, units: list[Unit] = (), *, healthy_s: float = 60.0, base_s: float = 1.0,
                 max_s: float = 60.0, clock: Callable[[], float] = time.monotonic,
                 say: Callable[[str], None] | None = None) -> None:
        self.healthy_s, self.base_s, self.max_s = healthy_s, base_s, max_s
        self.clock = clock
        self.say = say or (lambda text: print(text, flush=True))
        self.units: list[Unit] = []
        for unit in units:
            self.add(unit)

    def add(self, unit: Unit) -> Unit:
        """Supervise a unit that has just been started."""
        unit.started_at = self.clock()
        self.units.append(unit)
        return unit

    def delay(self, unit: Unit) -> float:
        """How long after its death the unit is started again."""
        return min(self.max_s, self.base_s * 2 ** max(0, unit.failures - 1))

    def check(self) -> None:
        """Notice units that died; start again those whose back-off has passed (in the order added)."""
        for unit in self.units:
            now = self.clock()
            if unit.died_at is None:
                if unit.alive():
                    continue
                ran = now - unit.started_at
                unit.died_at = now
                unit.failures = 1 if ran >= self.healthy_s else unit.failures + 1
                self.say(f"  {unit.name} stopped after {ran:.0f}s; restarting in {self.delay(unit):.0f}s")
            if now - unit.died_at < self.delay(unit):
                continue
            unit.restarts += 1
            try:
                unit.start()
            except Exception as exc:  # noqa: BLE001 - a failed start is retried, never fatal
                unit.failures += 1
                unit.died_at = self.clock()
                self.say(f"  {unit.name} did not start (#{unit.restarts}): {exc}; next try in {self.delay(unit):.0f}s")
                continue
            unit.started_at, unit.died_at = self.clock(), None
            self.say(f"  {unit.name} restarted (#{unit.restarts})")

    def run(self, stop: threading.Event, poll_s: float = 1.0) -> None:
        """Check every `poll_s` seconds until `stop` is set."""
        while not stop.wait(poll_s):
            self.check()


def port_free(port: int) -> bool:
    """True when nothing listens on 127.0.0.1:port."""
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _pick_port(preferred: int) -> int:
    if port_free(preferred):
        return preferred
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _persistent_secret(path: Path) -> str:
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def wait_http(url: str, timeout: float) -> bool:
    """Poll a URL until it answers 2xx, or give up after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).is_success:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return False


class Stack:
    """Brings the whole platform up on one machine and keeps it running."""

    def __init__(self, settings: PlatformSettings, *, scale: str, api_port: int, dashboard_port: int,
                 simulate: bool) -> None:
        self.settings = settings
        self.scale = scale
        self.api_port = _pick_port(api_port)
        self.dashboard_port = _pick_port(dashboard_port)
        self.simulate = simulate
        self.data_dir = settings.data_dir.resolve()
        self.log_dir = self.data_dir / "logs"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # devices' passwords derive from it: the simulator and the broker's password file must agree
        self.device_secret = os.environ.get("COCKPIT_DEVICE_SECRET") or _persistent_secret(self.data_dir / "device-secret")
        self.services: list = []
        self.children: list[Child] = []
        self.supervisor = Supervisor()
        self._stop = threading.Event()

    def _database(self) -> str:
        from ops.embedded import EmbeddedPostgres

        if self.settings.database_url:
            return self.settings.database_url
        pg = EmbeddedPostgres(self.data_dir / "postgres")
        pg.start()
        self.services.append(pg)
        self.supervisor.add(Unit("postgres", lambda: pg.running, pg.start))
        print(f"  PostgreSQL  {pg.url}  (embedded, data in {self.data_dir / 'postgres'})", flush=True)
        return pg.url

    def _ingest_worker(self) -> str:
        from ingest.settings import ingest_settings

        return ingest_settings().worker_id

    def _broker(self, db_url: str) -> tuple[str, str | None]:
        """The broker's URL (no credentials) and the secret the services' passwords derive from:
        the configured broker, or an embedded one that knows every registered device and service."""
        from ops import broker_sync
        from ops.broker_auth import tls_listener, write_files
        from ops.embedded import EmbeddedMosquitto

        if self.settings.mqtt_url:
            return self.settings.mqtt_url, None
        s = self.settings
        tls = tls_listener(s.mqtt_tls_cert_file, s.mqtt_tls_key_file, s.mqtt_tls_port)
        for path in (tls.cert_file, tls.key_file) if tls else ():
            if not Path(path).is_file():
                raise RuntimeError(f"TLS certificate file {path} does not exist")
        platform_password = _persistent_secret(self.data_dir / "mqtt-platform-password")

        def write(conn: psycopg.Connection) -> tuple[Path, Path]:
            return write_files(conn, self.data_dir / "mosquitto-auth", self.device_secret, platform_password,
                               tls, ingest_workers=[self._ingest_worker()])

        with psycopg.connect(db_url) as conn:
            passwords, acl = write(conn)
        broker = EmbeddedMosquitto(self.data_dir / "mosquitto", password_file=passwords, acl_file=acl,
                                   include_dir=passwords.parent / "conf.d")
        broker.start()
        self.services.append(broker)
        self.supervisor.add(Unit("mosquitto", lambda: broker.running, broker.start))
        # devices registered or retired from now on are let in or shut out at once
        broker_sync.start(broker_sync.BrokerSync(db_url, write, broker.reload), self._stop)
        print(f"  Mosquitto   {broker.url}  (embedded; devices and services log in with their own accounts)",
              flush=True)
        if tls:
            print(f"              mqtts://<this host>:{tls.port}  (TLS, {tls.cert_file})", flush=True)
        return broker.url, platform_password

    def _prepare_database(self, db_url: str) -> None:
        applied = migrate(db_url)
        print(f"  schema      {len(applied)} migration(s) applied", flush=True)
        with psycopg.connect(db_url) as conn:
            schools = conn.execute("SELECT count(*) FROM school").fetchone()[0]
        if schools:
            print(f"  registry    {schools} schools already seeded (kept)", flush=True)
            return
        from ops.seed.generator import seed_database

        started = time.monotonic()
        counts = seed_database(db_url, self.scale)
        print(f"  registry    seeded {self.scale} province in {time.monotonic() - started:.1f}s: "
              f"{counts.get('school', 0)} schools, {counts.get('device', 0)} devices", flush=True)
        if self.scale == "demo":
            from ops.seed.history import add_history

            started = time.monotonic()
            add_history(db_url)  # so trends and lesson figures are not empty on the first start
            print(f"  history     a term of simulated past in {time.monotonic() - started:.1f}s", flush=True)

    def _children(self, db_url: str, mqtt_url: str, platform_password: str | None) -> list[Child]:
        from core.credentials import API, PATROL, SNAPSHOTS, derived_password, ingest_account

        env = {**os.environ, "COCKPIT_DATABASE_URL": db_url, "COCKPIT_MQTT_URL": mqtt_url,
               "COCKPIT_DATA_DIR": str(self.data_dir),
               "API_SECRET_KEY": os.environ.get("API_SECRET_KEY") or _persistent_secret(self.data_dir / "api-secret"),
               "SIM_DEVICE_SECRET": self.device_secret,
               "COCKPIT_DEVICE_SECRET": self.device_secret,  # the API prints a new device's credentials
               "API_PORT": str(self.api_port), "DASHBOARD_PORT": str(self.dashboard_port),
               "DASHBOARD_API_URL": f"http://127.0.0.1:{self.api_port}"}
        env.pop("COCKPIT_MQTT_USERNAME", None)  # each service gets its own below; the others need none

        def account(username: str) -> dict[str, str]:
            """One service's own broker account: its password in the URL of the embedded broker; for a
            configured one the name alone, when the secret is set (the service derives the password)."""
            if platform_password is None:
                return {**env, "COCKPIT_MQTT_USERNAME": username} if self.settings.mqtt_platform_password else env
            own = mqtt_url.replace("mqtt://", f"mqtt://{username}:{derived_password(platform_password, username)}@", 1)
            return {**env, "COCKPIT_MQTT_URL": own}

        children = [Child("ingest", ["ingest"], account(ingest_account(self._ingest_worker()))),
                    Child("rollups", ["rollups"], env), Child("patrol", ["patrol"], account(PATROL)),
                    Child("api", ["api"], account(API)), Child("dashboard", ["dashboard"], env),
                    Child("snapshots", ["snapshots"], account(SNAPSHOTS))]  # camera stills (智能巡课)
        if self.simulate:
            children.append(Child("simulator", ["simulate"], env))  # devices log in as themselves
        return children

    def run(self) -> None:
        """Start everything, print the URLs, supervise until Ctrl-C, then stop everything."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self._stop.set())
        print("Starting the education cockpit platform…", flush=True)
        try:
            db_url = self._database()
            self._prepare_database(db_url)
            mqtt_url, platform_password = self._broker(db_url)
            self.children = self._children(db_url, mqtt_url, platform_password)
            for child in self.children:
                child.start(self.log_dir)
                self.supervisor.add(Unit(child.name, child.alive, partial(child.start, self.log_dir)))
            api_ok = wait_http(f"http://127.0.0.1:{self.api_port}/readyz", 60)
            ui_ok = wait_http(f"http://127.0.0.1:{self.dashboard_port}/login", 60)
            self._announce(api_ok and ui_ok)
            self._supervise()
        finally:
            self.shutdown()

    def _announce(self, ready: bool) -> None:
        state = "ready" if ready else "STARTING SLOWLY (see logs)"
        print(f"\nCockpit {state}:\n"
              f"  Cockpit     http://127.0.0.1:{self.dashboard_port}/   (log in as admin / demo-password)\n"
              f"  API docs    http://127.0.0.1:{self.api_port}/docs\n"
              f"  Logs        {self.log_dir}\n"
              "Press Ctrl-C to stop everything.\n", flush=True)

    def _supervise(self) -> None:
        self.supervisor.run(self._stop)

    def shutdown(self) -> None:
        """Stop the services (children first, then broker and database)."""
        print("Stopping…", flush=True)
        self._stop.set()  # the threads beside the services (the broker's accounts) stop first
        for child in reversed(self.children):
            child.stop()
        for service in reversed(self.services):
            service.stop()
        print("Stopped.", flush=True)
