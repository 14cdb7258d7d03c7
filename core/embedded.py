"""Embedded PostgreSQL and Mosquitto, run as child processes for `cockpit up` and the tests.

Data lives under a folder of the caller's choosing. A second start on the same folder
keeps the data and, when it is free, the port. PostgreSQL refuses to run as root, so
when this process is root the cluster is initialised and run as the `postgres` user.
"""

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import psycopg
from psycopg import sql

_PG_USER = "postgres"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _wait_port(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _port_free(port):
            return True
        time.sleep(0.05)
    return False


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stable_port(record: Path, preferred: int | None) -> int:
    """The requested port, else the one used last time if free, else a free one; remembered."""
    port = preferred
    if port is None and record.exists():
        previous = int(record.read_text().strip() or 0)
        port = previous if previous and _port_free(previous) else None
    port = port or free_port()
    record.write_text(str(port))
    return port


def pg_bindir() -> Path:
    """Where Debian keeps the PostgreSQL server binaries (the newest installed major)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise RuntimeError("PostgreSQL server not installed: apt-get install postgresql")
    return Path(found[-1]).parent


class EmbeddedPostgres:
    """A private PostgreSQL cluster on 127.0.0.1 with a `cockpit` database."""

    def __init__(self, data_dir: Path, port: int | None = None, database: str = "cockpit") -> None:
        self.root = Path(data_dir).resolve()
        self.data = self.root / "data"
        self.socket_dir = self.root / "run"
        self.log = self.root / "postgres.log"
        self.database = database
        self._preferred = port
        self.port = 0
        self._as_root = os.geteuid() == 0
        self.bindir = pg_bindir()

    @property
    def user(self) -> str:
        """The database superuser (the OS user that owns the cluster)."""
        return _PG_USER if self._as_root else pwd.getpwuid(os.geteuid()).pw_name

    @property
    def url(self) -> str:
        """Connection URL of the cockpit database."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        kwargs = {"user": _PG_USER, "group": _PG_USER} if self._as_root else {}
        return subprocess.run([str(self.bindir / args[0]), *args[1:]], capture_output=True, text=True,
                              check=check, cwd="/", **kwargs)

    def _prepare_folders(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        if self._as_root:
            pg = pwd.getpwnam(_PG_USER)
            for path in (self.root, self.socket_dir):
                os.chown(path, pg.pw_uid, pg.pw_gid)
            # the postgres user must be able to reach the folder through every parent
            for parent in self.root.parents:
                mode = parent.stat().st_mode
                if not mode & 0o001:
                    parent.chmod(mode | 0o001)

    def _initdb(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", self.user, "-A", "trust", "-E", "UTF8",
                  "--locale=C.UTF-8")
        conf = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.socket_dir}'",
            "max_connections": "200",
            "shared_buffers": "'256MB'",
            "synchronous_commit": "on",  # acknowledged to the broker only after a durable commit
            "wal_compression": "on",
            "max_wal_size": "'2GB'",
            "checkpoint_timeout": "'10min'",
            "timezone": "'UTC'",
            # planner costs for SSDs and a machine with memory to spare: without them a
            # county's 30-day trend scans every school's rows instead of its own (82 ms → 3 ms)
            "random_page_cost": "1.1",
            "effective_cache_size": "'4GB'",
        }
        if self._timescaledb_available():
            conf["shared_preload_libraries"] = "'timescaledb'"
            conf["timescaledb.telemetry_level"] = "off"
        with open(self.data / "postgresql.conf", "a") as f:
            f.write("\n# cockpit embedded settings\n")
            f.writelines(f"{k} = {v}\n" for k, v in conf.items())

    def _timescaledb_available(self) -> bool:
        pkglib = subprocess.run([str(self.bindir / "pg_config"), "--pkglibdir"], capture_output=True,
                                text=True).stdout.strip()
        if not pkglib:
            pkglib = str(self.bindir.parent / "lib")
        return bool(glob.glob(os.path.join(pkglib, "timescaledb*.so")))

    def start(self) -> "EmbeddedPostgres":
        """Initialise the cluster if needed, start it, and create the database."""
        self._prepare_folders()
        if not (self.data / "PG_VERSION").exists():
            self._initdb()
        self.port = _stable_port(self.root / "port", self._preferred)
        result = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                           "-o", f"-p {self.port}", "start", check=False)
        if result.returncode != 0:
            raise RuntimeError(f"PostgreSQL did not start: {result.stderr.strip()}\n{_tail(self.log)}")
        with self._admin() as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)).fetchone() is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))
        return self

    def _admin(self) -> psycopg.Connection:
        return psycopg.connect(f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres", autocommit=True)

    def create_database(self, name: str) -> str:
        """Create (or re-create) another database on this server; return its URL."""
        with self._admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{name}"

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (mode: smart, fast or immediate)."""
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def __enter__(self) -> "EmbeddedPostgres":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class EmbeddedMosquitto:
    """A private Mosquitto broker on 127.0.0.1 with persistence and lossless queue limits."""

    def __init__(self, data_dir: Path, port: int | None = None, *, password_file: Path | None = None,
                 acl_file: Path | None = None, max_queued_messages: int = 1_000_000) -> None:
        self.root = Path(data_dir).resolve()
        self.password_file = password_file
        self.acl_file = acl_file
        self.max_queued_messages = max_queued_messages
        self.log = self.root / "mosquitto.log"
        self.conf = self.root / "mosquitto.conf"
        self._preferred = port
        self.port = 0
        self.process: subprocess.Popen | None = None
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(binary).exists():
            raise RuntimeError("Mosquitto not installed: apt-get install mosquitto")
        self.binary = binary

    @property
    def url(self) -> str:
        """The broker's mqtt:// URL (anonymous; credentials are added by the caller)."""
        return f"mqtt://127.0.0.1:{self.port}"

    def _write_conf(self) -> None:
        auth = (f"allow_anonymous false\npassword_file {self.password_file}\n"
                + (f"acl_file {self.acl_file}\n" if self.acl_file else "")) if self.password_file \
            else "allow_anonymous true\n"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            f"{auth}"
            "persistence true\n"
            f"persistence_location {self.root}/\n"
            # Save queued messages every few seconds; a clean stop (SIGTERM) always saves.
            "autosave_interval 5\n"
            # Debian's default queue of 1000 messages per offline session drops data:
            # queue far more for a persistent ingest session, bounded by bytes as well.
            f"max_queued_messages {self.max_queued_messages}\n"
            "max_queued_bytes 1073741824\n"
            "max_inflight_messages 0\n"
            "message_size_limit 262144\n"
            "persistent_client_expiration 14d\n"
            f"user {pwd.getpwuid(os.geteuid()).pw_name}\n"
            f"log_dest file {self.log}\n"
            "log_type error\nlog_type warning\nlog_type notice\n"
            "connection_messages false\n"
        )

    def start(self) -> "EmbeddedMosquitto":
        """Write the configuration and start the broker; wait until it accepts connections."""
        self.root.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = _stable_port(self.root / "port", self._preferred)
        self._write_conf()
        self.process = subprocess.Popen([self.binary, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True)
        if not _wait_port(self.port, 15):
            self.kill()
            raise RuntimeError(f"Mosquitto did not start on port {self.port}:\n{_tail(self.log)}")
        return self

    def stop(self) -> None:
        """Stop the broker cleanly (it saves its persistence file on SIGTERM)."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._wait_port_closed()

    def kill(self) -> None:
        """Kill the broker without letting it save (a crash)."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._wait_port_closed()

    def restart(self) -> None:
        """Stop cleanly and start again on the same port."""
        self.stop()
        self.start()

    def _wait_port_closed(self) -> None:
        deadline = time.monotonic() + 10
        while self.port and not _port_free(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def __enter__(self) -> "EmbeddedMosquitto":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
