"""The broker's accounts follow the registry at once: a device registered in the cockpit, by an
import or through the API may connect within seconds, and a retired one is refused on its next
connect, without restarting anything.

The registry announces every change to the set of devices (a statement trigger on `device_all`,
sql/029, `NOTIFY broker_accounts`). This loop listens, lets a burst settle (an import of a
province is one notice, a hand of registrations a few), rewrites the password file and access
list from the registry (ops/broker_auth.py: only new devices are hashed) and asks the broker to
re-read them (SIGHUP). Mosquitto's password file and SIGHUP were chosen over its dynamic
security plugin: the registry stays the only copy of who may connect, a rewrite from it is
idempotent and heals whatever a missed notice left behind, and the per-device access rules stay
one `%u` pattern instead of 200,000 roles.

Notices sent while the loop is disconnected from the database are lost, so every (re)connect
begins with a full rewrite, and one runs every `resync_s` regardless.
"""

import logging
import threading
import time
from collections.abc import Callable

import psycopg

log = logging.getLogger(__name__)

CHANNEL = "broker_accounts"


class BrokerSync:
    """Rewrite the broker's files and reload it whenever the registry's devices change."""

    def __init__(self, database_url: str, write: Callable[[psycopg.Connection], object],
                 reload: Callable[[], None], *, settle_s: float = 0.5, resync_s: float = 300.0,
                 retry_s: float = 2.0) -> None:
        self.database_url = database_url
        self.write = write  # writes the files from the registry, on the connection given
        self.reload = reload  # asks the broker to re-read them
        self.settle_s = settle_s
        self.resync_s = resync_s
        self.retry_s = retry_s
        self.rewrites = 0  # how many times the files were rewritten (for tests and the log)

    def sync(self, conn: psycopg.Connection) -> None:
        """One rewrite and reload, now."""
        started = time.monotonic()
        self.write(conn)
        self.reload()
        self.rewrites += 1
        log.info("broker accounts rewritten from the registry and reloaded in %.2f s", time.monotonic() - started)

    def run(self, stop: threading.Event) -> None:
        """Listen and rewrite until `stop` is set; a lost database is waited for and reconnected."""
        while not stop.is_set():
            try:
                with psycopg.connect(self.database_url, autocommit=True, application_name="broker-sync") as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.sync(conn)  # whatever changed while nobody listened
                    self._listen(conn, stop)
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                log.warning("broker accounts: database unavailable (%s); retrying", exc)
                stop.wait(self.retry_s)
            except (OSError, ValueError) as exc:  # a file that cannot be written, a broker gone
                log.error("broker accounts: rewrite failed (%s); retrying", exc)
                stop.wait(self.retry_s)

    def _listen(self, conn: psycopg.Connection, stop: threading.Event) -> None:
        last = time.monotonic()
        while not stop.is_set():
            changed = any(True for _ in conn.notifies(timeout=1.0, stop_after=1))
            if changed:
                # let a burst of changes settle into one rewrite (but never wait more than 10 s)
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and any(
                        True for _ in conn.notifies(timeout=self.settle_s, stop_after=1)):
                    pass
            if changed or time.monotonic() - last >= self.resync_s:
                self.sync(conn)
                last = time.monotonic()


def start(sync: BrokerSync, stop: threading.Event) -> threading.Thread:
    """Run the loop on a daemon thread."""
    thread = threading.Thread(target=sync.run, args=(stop,), name="broker-sync", daemon=True)
    thread.start()
    return thread
