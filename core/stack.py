"""The local stack behind `cockpit up`: embedded services, migrations, seed, and a supervisor.

Every service runs as its own child process (one job each), exactly as in production;
this module only starts them, restarts one that dies, and stops all on Ctrl-C.
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
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

from core.db import migrate
from core.settings import PlatformSettings

log = logging.getLogger(__name__)


@dataclass
class Child:
    """A supervised service process."""

    name: str
    args: list[str]
    env: dict[str, str]
    process: subprocess.Popen | None = None
    restarts: int = 0
    started_at: float = field(default=0.0)

    def start(self, log_dir: Path) -> None:
        """Start (or restart) the process, its output going to a log file."""
        out = open(log_dir / f"{self.name}.log", "ab")  # noqa: SIM115 - owned by the child for its life
        self.process = subprocess.Popen([sys.executable, "-m", "core.cli", *self.args], env=self.env,
                                        stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.started_at = time.monotonic()

    def stop(self, timeout: float = 10) -> None:
        """Ask the process to stop, and kill it if it does not."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


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
        self._stop = threading.Event()

    def _database(self) -> str:
        from core.embedded import EmbeddedPostgres

        if self.settings.database_url:
            return self.settings.database_url
        pg = EmbeddedPostgres(self.data_dir / "postgres")
        pg.start()
        self.services.append(pg)
        print(f"  PostgreSQL  {pg.url}  (embedded, data in {self.data_dir / 'postgres'})", flush=True)
        return pg.url

    def _broker(self, db_url: str) -> str:
        """The configured broker, or an embedded one that knows every registered device and nobody else."""
        from core.broker_auth import PLATFORM_USER, tls_listener, write_files
        from core.embedded import EmbeddedMosquitto

        if self.settings.mqtt_url:
            return self.settings.mqtt_url
        s = self.settings
        tls = tls_listener(s.mqtt_tls_cert_file, s.mqtt_tls_key_file, s.mqtt_tls_port)
        for path in (tls.cert_file, tls.key_file) if tls else ():
            if not Path(path).is_file():
                raise RuntimeError(f"TLS certificate file {path} does not exist")
        platform_password = _persistent_secret(self.data_dir / "mqtt-platform-password")
        with psycopg.connect(db_url) as conn:
            passwords, acl = write_files(conn, self.data_dir / "mosquitto-auth", self.device_secret, platform_password,
                                         tls)
        broker = EmbeddedMosquitto(self.data_dir / "mosquitto", password_file=passwords, acl_file=acl,
                                   include_dir=passwords.parent / "conf.d")
        broker.start()
        self.services.append(broker)
        print(f"  Mosquitto   {broker.url}  (embedded; devices log in with their own credentials)", flush=True)
        if tls:
            print(f"              mqtts://<this host>:{tls.port}  (TLS, {tls.cert_file})", flush=True)
        return f"mqtt://{PLATFORM_USER}:{platform_password}@127.0.0.1:{broker.port}"

    def _prepare_database(self, db_url: str) -> None:
        applied = migrate(db_url)
        print(f"  schema      {len(applied)} migration(s) applied", flush=True)
        with psycopg.connect(db_url) as conn:
            schools = conn.execute("SELECT count(*) FROM school").fetchone()[0]
        if schools:
            print(f"  registry    {schools} schools already seeded (kept)", flush=True)
            return
        from core.seed.generator import seed_database

        started = time.monotonic()
        counts = seed_database(db_url, self.scale)
        print(f"  registry    seeded {self.scale} province in {time.monotonic() - started:.1f}s: "
              f"{counts.get('school', 0)} schools, {counts.get('device', 0)} devices", flush=True)
        if self.scale == "demo":
            from devices.history import add_history

            started = time.monotonic()
            add_history(db_url)  # so trends and lesson figures are not empty on the first start
            print(f"  history     four weeks of simulated past in {time.monotonic() - started:.1f}s", flush=True)

    def _children(self, db_url: str, mqtt_url: str) -> list[Child]:
        env = {**os.environ, "COCKPIT_DATABASE_URL": db_url, "COCKPIT_MQTT_URL": mqtt_url,
               "COCKPIT_DATA_DIR": str(self.data_dir),
               "API_SECRET_KEY": os.environ.get("API_SECRET_KEY") or _persistent_secret(self.data_dir / "api-secret"),
               "SIM_DEVICE_SECRET": self.device_secret,
               "API_PORT": str(self.api_port), "DASHBOARD_PORT": str(self.dashboard_port),
               "DASHBOARD_API_URL": f"http://127.0.0.1:{self.api_port}"}
        children = [Child("ingest", ["ingest"], env), Child("rollups", ["rollups"], env),
                    Child("patrol", ["patrol"], env), Child("api", ["api"], env),
                    Child("dashboard", ["dashboard"], env)]
        if self.simulate:
            children.append(Child("simulator", ["simulate"], env))
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
            mqtt_url = self._broker(db_url)
            self.children = self._children(db_url, mqtt_url)
            for child in self.children:
                child.start(self.log_dir)
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
        while not self._stop.wait(1):
            for child in self.children:
                code = child.process.poll() if child.process else None
                if code is None:
                    continue
                backoff = min(60, 2 ** child.restarts)
                if time.monotonic() - child.started_at < backoff:
                    continue
                child.restarts += 1
                print(f"  {child.name} exited with {code}; restarting (#{child.restarts})", flush=True)
                child.start(self.log_dir)

    def shutdown(self) -> None:
        """Stop the services (children first, then broker and database)."""
        print("Stopping…", flush=True)
        for child in reversed(self.children):
            child.stop()
        for service in reversed(self.services):
            service.stop()
        print("Stopped.", flush=True)
