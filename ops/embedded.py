"""Embedded PostgreSQL and Mosquitto, run as child processes for `cockpit up` and the tests.

Data lives under a folder of the caller's choosing. A second start on the same folder
keeps the data and, when it is free, the port. PostgreSQL refuses to run as root, so
when this process is root the cluster is initialised and run as the `postgres` user.
Nothing here touches the system services (their ports, sockets or clusters).
"""

import contextlib
import glob
import hashlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
from psycopg import sql

from core.process import terminate

_PG_USER = "postgres"
_GIB = 1 << 30
# Payload sizes (docs/mqtt-contract.md). The broker's guard refuses a device's payload over the
# contract's 16 KiB (MQTT 5: PUBACK 0x87) and reports it to the ingest. A packet over
# MAX_PACKET_SIZE is not even read: the broker disconnects the client (MQTT 5: DISCONNECT 0x95),
# so no client makes it buffer more than this; MQTT 5 clients learn the limit from the CONNACK.
MAX_PACKET_SIZE = 1024 * 1024

# Server settings for an IoT write load on one machine, rewritten on every start into
# cockpit.conf (included last by postgresql.conf) so an old cluster follows the code.
_PG_CONF = """\
listen_addresses = '127.0.0.1'
max_connections = 200
shared_buffers = '256MB'
# the ingest acknowledges a message to the broker only after its commit is durable
synchronous_commit = on
# batched COPY writes much WAL: fewer, spread-out checkpoints, compressed page images
wal_compression = on
min_wal_size = '256MB'
max_wal_size = '2GB'
checkpoint_timeout = '10min'
checkpoint_completion_target = 0.9
timezone = 'UTC'
# SSD planner costs and memory to spare: without them a county's 30-day trend scans
# every school's rows instead of its own (82 ms -> 3 ms)
random_page_cost = 1.1
effective_cache_size = '4GB'
"""
_TIMESCALEDB_CONF = """\
shared_preload_libraries = 'timescaledb'
timescaledb.telemetry_level = off
# a query over a hypertable takes a lock per chunk
max_locks_per_transaction = 256
"""
_INCLUDE = "include_if_exists = 'cockpit.conf'"
# Trust, but only from this machine: the server listens on 127.0.0.1 and its own socket.
_PG_HBA = """\
local all all trust
host all all 127.0.0.1/32 trust
"""


GUARD_SOURCE = Path(__file__).resolve().parent.parent / "deploy" / "mosquitto" / "guard.c"


def guard_plugin() -> Path:
    """The broker's guard plugin, compiled from deploy/mosquitto/guard.c once per version of it
    into the user's cache (needs gcc and Mosquitto's development headers: mosquitto-dev,
    libmosquitto-dev)."""
    source = GUARD_SOURCE.read_bytes()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cockpit"
    built = cache / f"mosquitto-guard-{hashlib.sha256(source).hexdigest()[:16]}.so"
    if built.exists():
        return built
    cache.mkdir(parents=True, exist_ok=True)
    compiler = shutil.which("gcc") or shutil.which("cc")
    if not compiler:
        raise RuntimeError("the broker's guard needs a C compiler: apt-get install gcc libc6-dev")
    partial = built.with_suffix(f".{os.getpid()}.tmp")
    result = subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-o", str(partial), str(GUARD_SOURCE)],
                            capture_output=True, text=True)
    if result.returncode:
        partial.unlink(missing_ok=True)
        raise RuntimeError("could not build the broker's guard (apt-get install mosquitto-dev libmosquitto-dev):\n"
                           + result.stderr[-2000:])
    os.replace(partial, built)  # concurrent builders each write their own file; one wins whole
    return built


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def process_alive(pid: int) -> bool:
    """True while a process of that id runs; a zombie counts as dead (and is reaped if it is ours)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    if state in ("Z", "X"):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # ours when this process is a container's PID 1
        return False
    return True


def _tail(*paths: Path, lines: int = 20) -> str:
    return "\n".join(f"--- {p}\n" + "\n".join(p.read_text(errors="replace").splitlines()[-lines:])
                     for p in paths if p.exists())


def _stable_port(record: Path, preferred: int | None) -> int:
    """The requested port, else last run's port if still free, else a free one; remembered."""
    port = preferred
    if port is None and record.exists():
        previous = int(record.read_text().strip() or 0)
        port = previous if previous and not _listening(previous) else None
    port = port or free_port()
    record.write_text(f"{port}\n")
    return port


def pg_bindir() -> Path:
    """Where the PostgreSQL server binaries are: COCKPIT_PG_BINDIR when set (another layout or build),
    else Debian's place for the newest installed major."""
    if os.environ.get("COCKPIT_PG_BINDIR"):
        chosen = Path(os.environ["COCKPIT_PG_BINDIR"])
        if not (chosen / "postgres").exists():
            raise RuntimeError(f"COCKPIT_PG_BINDIR={chosen} holds no postgres binary")
        return chosen
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise RuntimeError("PostgreSQL server not installed: apt-get install postgresql")
    return Path(found[-1]).parent


class EmbeddedPostgres:
    """A private PostgreSQL cluster on 127.0.0.1 with a `cockpit` database."""

    def __init__(self, data_dir: Path, port: int | None = None, database: str = "cockpit") -> None:
        self.root = Path(data_dir).resolve()
        self.data = self.root / "data"
        self.socket_dir = self.root / "run"  # not /var/run/postgresql: the system cluster's
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
        return self.database_url(self.database)

    def database_url(self, name: str) -> str:
        """Connection URL of a database on this server."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{name}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        owner = {"user": _PG_USER, "group": _PG_USER} if self._as_root else {}
        # cwd "/": the postgres user may not be allowed into the caller's working folder
        return subprocess.run([str(self.bindir / args[0]), *args[1:]], capture_output=True, text=True,
                              check=check, cwd="/", **owner)

    def _write(self, path: Path, text: str) -> None:
        path.write_text(text)
        if self._as_root:
            shutil.chown(path, _PG_USER, _PG_USER)

    def _prepare_folders(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        if not self._as_root:
            return
        for path in (self.root, self.socket_dir):
            shutil.chown(path, _PG_USER, _PG_USER)
        # the postgres user must be able to reach the folder: grant search (not read) on parents
        for parent in self.root.parents:
            mode = parent.stat().st_mode
            if not mode & 0o001:
                parent.chmod(mode | 0o001)

    def _initdb(self) -> None:
        base = ("initdb", "-D", str(self.data), "-U", self.user, "-A", "trust", "-E", "UTF8")
        result = self._run(*base, "--locale=C.UTF-8", check=False)
        if result.returncode != 0:  # a system without the C.UTF-8 locale
            result = self._run(*base, "--locale=C", check=False)
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed in {self.data}:\n{result.stdout}\n{result.stderr}")

    def _configure(self) -> None:
        conf = _PG_CONF + f"unix_socket_directories = '{self.socket_dir}'\n"
        conf += _TIMESCALEDB_CONF if self._timescaledb_available() else ""
        self._write(self.data / "cockpit.conf", conf)
        main_conf = self.data / "postgresql.conf"
        if _INCLUDE not in main_conf.read_text():  # last in the file, so our settings win
            with open(main_conf, "a") as conf:
                conf.write(f"\n# cockpit embedded settings, rewritten on every start\n{_INCLUDE}\n")
        self._write(self.data / "pg_hba.conf", _PG_HBA)

    def _timescaledb_available(self) -> bool:
        try:
            pkglib = subprocess.run([str(self.bindir / "pg_config"), "--pkglibdir"], capture_output=True,
                                    text=True).stdout.strip()
        except OSError:  # pg_config is not always installed beside the server
            pkglib = ""
        return bool(glob.glob(os.path.join(pkglib or str(self.bindir.parent / "lib"), "timescaledb*.so")))

    @property
    def running(self) -> bool:
        """True while the cluster's server runs (its postmaster.pid names a live process)."""
        try:
            pid = int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return False
        return process_alive(pid)

    def _running_port(self) -> int | None:
        """The port of a server already running on this cluster (left by a killed `cockpit up`)."""
        if self._run("pg_ctl", "-D", str(self.data), "status", check=False).returncode != 0:
            return None
        lines = (self.data / "postmaster.pid").read_text().splitlines()
        return int(lines[3]) if len(lines) > 3 else None

    def start(self) -> "EmbeddedPostgres":
        """Initialise the cluster if needed, start it, and create the database."""
        self._prepare_folders()
        if not (self.data / "PG_VERSION").exists():
            self._initdb()
        running = self._running_port()
        if running:
            self.port = running
        else:
            self._configure()
            # a restart keeps the port: clients reconnect to the same URL
            self.port = _stable_port(self.root / "port", self._preferred or self.port or None)
            result = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                               "-o", f"-p {self.port}", "start", check=False)
            if result.returncode != 0:
                raise RuntimeError(f"PostgreSQL did not start in {self.data} on port {self.port}: "
                                   f"{result.stderr.strip()}\n{_tail(self.log)}")
        with self._admin() as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)).fetchone() is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))
        return self

    def _admin(self) -> psycopg.Connection:
        return psycopg.connect(self.database_url("postgres"), autocommit=True)

    def create_database(self, name: str) -> str:
        """Create (or re-create, empty) another database on this server; return its URL."""
        with self._admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.database_url(name)

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

    def __init__(self, data_dir: Path, port: int | None = None, password_file: Path | None = None,
                 acl_file: Path | None = None, *, include_dir: Path | None = None, max_queued_messages: int = 1_000_000,
                 max_queued_bytes: int = _GIB, autosave_interval_s: int = 2,
                 log_types: tuple[str, ...] = ("error", "warning", "notice")) -> None:
        self.root = Path(data_dir).resolve()
        self.password_file = Path(password_file).resolve() if password_file else None
        self.acl_file = Path(acl_file).resolve() if acl_file else None
        self.include_dir = Path(include_dir).resolve() if include_dir else None  # more listeners (TLS)
        self.max_queued_messages = max_queued_messages
        self.max_queued_bytes = max_queued_bytes
        # Seconds between two saves of the whole in-memory database (0: only on a clean stop and on
        # SIGUSR1); a crash (kill -9, power) loses what arrived since the last save.
        self.autosave_interval_s = autosave_interval_s
        self.log_types = log_types  # "debug" logs every packet, and each oversized publish refused
        self.log = self.root / "mosquitto.log"
        self.output = self.root / "mosquitto.out"  # errors from before the log file is open
        self.conf = self.root / "mosquitto.conf"
        self._preferred = port
        self.port = 0
        self.process: subprocess.Popen | None = None
        self.binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(self.binary).exists():
            raise RuntimeError("Mosquitto not installed: apt-get install mosquitto")

    @property
    def url(self) -> str:
        """The broker's mqtt:// URL (no credentials; a client adds its own)."""
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        """True while the broker process is alive (asking reaps a broker that died)."""
        return self.process is not None and self.process.poll() is None

    def _write_conf(self) -> None:
        from ops.broker_auth import LISTENER_IDENTITY, guard_conf

        identity = ""
        if self.password_file:
            auth = f"allow_anonymous false\npassword_file {self.password_file}\n"
            auth += f"acl_file {self.acl_file}\n" if self.acl_file else ""
            auth += guard_conf(guard_plugin())
            # a listener option: each client id is its account's (the TLS listener says it too)
            identity = LISTENER_IDENTITY
        else:
            auth = "allow_anonymous true\n"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            f"{identity}"
            f"{auth}"
            "persistence true\n"
            f"persistence_location {self.root}/\n"
            # Mosquitto 2.0 has no write-ahead log: it rewrites its whole database on each
            # save. A clean stop (SIGTERM) always saves, so restarts lose nothing; a crash
            # loses what arrived since the last save. Saving on every change would make a
            # backlog quadratic, so save on a short timer: a crash costs at most that long.
            f"autosave_interval {self.autosave_interval_s}\n"
            # Debian's default of 1000 messages per offline session drops data while the
            # ingest is away; queue far more, bounded in bytes so memory stays finite.
            f"max_queued_messages {self.max_queued_messages}\n"
            f"max_queued_bytes {self.max_queued_bytes}\n"
            "max_inflight_messages 0\n"
            f"max_packet_size {MAX_PACKET_SIZE}\n"
            "persistent_client_expiration 14d\n"
            # without `user`, a root broker switches to `mosquitto`, who cannot write here
            f"user {pwd.getpwuid(os.geteuid()).pw_name}\n"
            f"log_dest file {self.log}\n"
            + "".join(f"log_type {kind}\n" for kind in self.log_types)
            + "connection_messages false\n"
            + (f"include_dir {self.include_dir}\n" if self.include_dir else "")
        )

    def start(self) -> "EmbeddedMosquitto":
        """Write the configuration and start the broker; wait until it accepts connections."""
        if self.running:
            return self
        self.root.mkdir(parents=True, exist_ok=True)
        if not self.port:  # keep the port across restarts: clients reconnect to the same URL
            self.port = _stable_port(self.root / "port", self._preferred)
        if _listening(self.port):  # a listener there would pass for our broker being ready
            raise RuntimeError(f"Mosquitto cannot start: port {self.port} is already in use")
        self._write_conf()
        with open(self.output, "ab") as output:
            self.process = subprocess.Popen([self.binary, "-c", str(self.conf)], stdout=output,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        if not _wait_until(lambda: _listening(self.port) or not self.running, 15) or not self.running:
            self.kill()
            raise RuntimeError(f"Mosquitto did not start on port {self.port}:\n{_tail(self.output, self.log)}")
        return self

    def reload(self) -> None:
        """Ask the broker to re-read its password file and access list (SIGHUP); nothing when it is down."""
        if self.running:
            self.process.send_signal(signal.SIGHUP)

    def stop(self, timeout: float = 30) -> None:
        """Stop the broker cleanly: on SIGTERM it saves its persistence database first."""
        terminate(self.process, timeout)
        self._wait_closed()

    def kill(self) -> None:
        """Kill the broker without letting it save (a crash)."""
        if self.running:
            self.process.kill()
            self.process.wait()
        self._wait_closed()

    def restart(self) -> "EmbeddedMosquitto":
        """Stop cleanly and start again on the same port with the same data."""
        self.stop()
        return self.start()

    def _wait_closed(self) -> None:
        if self.port:
            _wait_until(lambda: not _listening(self.port), 10)

    def __enter__(self) -> "EmbeddedMosquitto":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
