"""The broker's password file and access list, made from the device registry.

Every registered device logs in as itself (username = device id; password derived from
the provisioning secret, see core.credentials) and may publish only under its own
topics and read only its own commands. Each service process has its own account
(`svc.ingest-<worker>`, `svc.patrol`, `svc.api`, `svc.monitor`, `svc.snapshots`; passwords derived from
the platform's broker secret) limited to what that service does. Every listener
replaces the client id a client sends with its username (`use_username_as_clientid`),
so a client id belongs to one account: no device can take over another device's or a
service's session. Nobody logs in anonymously.

The password file holds only salted PBKDF2-SHA512 hashes in Mosquitto's own format,
so it is written here directly (one external hashing process per device would take
hours for a province). A rewrite keeps the lines of devices already in the file when
the provisioning secret is the same one (`passwords.secret` holds a fingerprint of it),
so only new devices are hashed: a province's file is rewritten in about a second, not
in the quarter of a minute that hashing 200,000 devices again takes. Retired devices
(sql/029) are left out. `cockpit broker-auth` rewrites both files; a running broker
re-reads them on SIGHUP, and ops/broker_sync.py does both whenever the registry's set
of devices changes. `monitor-password` beside them
holds the clear password of the read-only monitor account, for the broker's own health
check (it grants reading `$SYS` and the patrol's notices, nothing else).

With a certificate and key configured (COCKPIT_MQTT_TLS_CERT_FILE, _KEY_FILE) the same
command also writes `conf.d/tls.conf`, a TLS listener the broker's configuration
includes, so devices outside the bureau's network connect encrypted. A new listener
needs a broker restart, not just SIGHUP.
"""

import base64
import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.rows import tuple_row

from core import contract
from core.contract import Channel
from core.credentials import (
    API,
    MONITOR,
    PATROL,
    SERVICE_PREFIX,
    SNAPSHOTS,
    derived_password,
    device_password,
    ingest_account,
    is_service_account,
)

OPS_ROOT = "edu/ops"  # operations notices (patrol)
MIN_SECRET = 16
MONITOR_PASSWORD_FILE = "monitor-password"
SECRET_FINGERPRINT_FILE = "passwords.secret"
# Not a possible device id (it has spaces), so its derived password names nobody's.
_FINGERPRINT_OF = "fingerprint of the password file"
_ITERATIONS = 101  # Mosquitto 2.0's own default for its PBKDF2-SHA512 ("$7$") hashes
_SALT_BYTES = 12
# What each kind of service does on the broker; devices' rules are the %u patterns below.
# A listener option, so it must follow every `listener` line: the broker replaces the client id
# a client sends with its username (and refuses a client without one), so nobody can connect
# under another account's client id, kick that client off and take over its session.
LISTENER_IDENTITY = "use_username_as_clientid true\n"


def guard_conf(plugin: Path | str) -> str:
    """The broker's lines loading its guard (deploy/mosquitto/guard.c): a device's SUBSCRIBE outside
    its own command topic is refused in the SUBACK, and a device's payload over the contract's limit
    (its own, larger one on the snapshot topic) is refused with PUBACK 0x87 and reported on its
    `refused` topic, which the ingest dead-letters."""
    return (f"plugin {plugin}\n"
            f"plugin_opt_device_subscribe {contract.topic('%u', Channel.COMMAND)}\n"
            f"plugin_opt_refused_topic {contract.topic('%u', Channel.REFUSED)}\n"
            f"plugin_opt_max_payload {contract.MAX_PAYLOAD_BYTES}\n"
            f"plugin_opt_snapshot_topic {contract.topic('%u', Channel.SNAPSHOT)}\n"
            f"plugin_opt_snapshot_max_payload {contract.MAX_SNAPSHOT_PAYLOAD_BYTES}\n"
            f"plugin_opt_service_prefix {SERVICE_PREFIX}\n")


def password_hash(password: str, salt: bytes | None = None) -> str:
    """A Mosquitto 2.0 password-file hash ($7$: PBKDF2-SHA512) of the password."""
    salt = salt if salt is not None else os.urandom(_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, _ITERATIONS)
    return f"$7${_ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def service_rules(ingest_workers: Iterable[str] = ("1",)) -> dict[str, list[str]]:
    """Each service account and its access lines (`read|write|readwrite <topic filter>`)."""
    every = f"{contract.TOPIC_ROOT}/+"
    rules = {ingest_account(worker): [f"read {every}/{channel.value}" for channel in contract.INGESTED]
             for worker in ingest_workers}
    rules[PATROL] = [f"read {every}/{Channel.STATUS.value}", f"write {OPS_ROOT}/#"]  # last wills; notices
    rules[API] = [f"write {every}/{Channel.COMMAND.value}"]  # commands down to devices
    rules[MONITOR] = ["read $SYS/#", f"read {OPS_ROOT}/#"]
    rules[SNAPSHOTS] = [f"read {every}/{Channel.SNAPSHOT.value}"]  # camera stills, for the snapshot intake
    return rules


def acl_text(ingest_workers: Iterable[str] = ("1",)) -> str:
    """The access list: devices confined to their own topics; each service to what it needs."""
    own = {Channel.TELEMETRY: "write", Channel.EVENT: "write", Channel.STATUS: "write", Channel.ACK: "write",
           Channel.COMMAND: "read", Channel.SNAPSHOT: "write"}
    device_rules = "".join(f"pattern {access} {contract.topic('%u', channel)}\n" for channel, access in own.items())
    services = "".join(f"user {account}\n" + "".join(f"topic {line}\n" for line in lines) + "\n"
                       for account, lines in service_rules(ingest_workers).items())
    return ("# written by `cockpit broker-auth`; devices log in as their own id, services as svc.<name>\n"
            f"{services}{device_rules}")


@dataclass(frozen=True)
class TlsListener:
    """A TLS listener: its port and the server certificate (chain) and key, as paths the broker reads."""

    port: int
    cert_file: Path
    key_file: Path
    bind: str | None = None  # an address to listen on; all of them when None

    def conf(self) -> str:
        """The listener's lines of a Mosquitto configuration."""
        bind = f" {self.bind}" if self.bind else ""
        return (f"listener {self.port}{bind}\n"
                f"{LISTENER_IDENTITY}"
                f"certfile {self.cert_file}\n"
                f"keyfile {self.key_file}\n"
                "tls_version tlsv1.2\n")


def tls_listener(cert_file: Path | None, key_file: Path | None, port: int) -> TlsListener | None:
    """The configured TLS listener, None when no certificate is configured; ValueError when half is."""
    if cert_file is None and key_file is None:
        return None
    if cert_file is None or key_file is None:
        raise ValueError("a TLS listener needs both COCKPIT_MQTT_TLS_CERT_FILE and COCKPIT_MQTT_TLS_KEY_FILE")
    return TlsListener(port, cert_file, key_file)


def _device_lines(passwords: Path, fingerprint_file: Path, fingerprint: str) -> dict[str, str]:
    """The device lines of the current password file by device id, when they were hashed under the
    same provisioning secret; none otherwise (a new secret means new passwords for every device)."""
    try:
        if fingerprint_file.read_text().strip() != fingerprint:
            return {}
        text = passwords.read_text()
    except FileNotFoundError:
        return {}
    return {line.partition(":")[0]: line for line in text.splitlines(keepends=True)
            if line.endswith("\n") and not is_service_account(line.partition(":")[0])}


def write_files(conn: psycopg.Connection, directory: Path, provisioning_secret: str,
                platform_password: str, tls: TlsListener | None = None, *,
                ingest_workers: Iterable[str] = ("1",)) -> tuple[Path, Path]:
    """Write passwords (every registered device and every service account), the access list, the
    monitor's password and the included listeners (`conf.d/`); return the paths of the first two.

    `platform_password` is the secret the service accounts' passwords derive from;
    `ingest_workers` the INGEST_WORKER_IDs that get an account.
    """
    for name, value in (("provisioning secret", provisioning_secret), ("platform password", platform_password)):
        if len(value or "") < MIN_SECRET:
            raise ValueError(f"the {name} must not be empty or shorter than {MIN_SECRET} characters")
    rules = service_rules(ingest_workers)  # ValueError for a worker id unfit for an account name
    directory.mkdir(parents=True, exist_ok=True)
    passwords, acl = directory / "passwords", directory / "acl"
    lines = [f"{account}:{password_hash(derived_password(platform_password, account))}\n" for account in rules]
    fingerprint = derived_password(provisioning_secret, _FINGERPRINT_OF)
    hashed = _device_lines(passwords, directory / SECRET_FINGERPRINT_FILE, fingerprint)
    for (device_id,) in conn.cursor(row_factory=tuple_row).execute("SELECT id FROM device ORDER BY id"):
        # The registry's CHECK constraint holds ids to this pattern, which has no room for the
        # services' prefix; a registry without it must not slip a service's name in.
        if not re.fullmatch(contract.DEVICE_ID_PATTERN, device_id):
            raise ValueError(f"device id {device_id!r} does not match the contract's pattern; not writing it")
        lines.append(hashed.get(device_id)
                     or f"{device_id}:{password_hash(device_password(provisioning_secret, device_id))}\n")
    included = directory / "conf.d"
    included.mkdir(exist_ok=True)
    listener = included / "tls.conf"
    # The fingerprint goes first and comes back last: a rewrite cut short leaves none, and the next
    # one hashes every device again rather than trust lines of unknown origin.
    (directory / SECRET_FINGERPRINT_FILE).unlink(missing_ok=True)
    files = [(passwords, "".join(lines)), (acl, acl_text(ingest_workers)),
             (directory / MONITOR_PASSWORD_FILE, derived_password(platform_password, MONITOR) + "\n")]
    if tls:
        files.append((listener, tls.conf()))
    else:
        listener.unlink(missing_ok=True)
    files.append((directory / SECRET_FINGERPRINT_FILE, fingerprint + "\n"))
    for path, text in files:
        partial = path.with_name(path.name + ".new")
        partial.write_text(text)
        partial.chmod(0o600)
        partial.replace(path)  # a broker reloading meanwhile reads the old file or the new one, never half
    return passwords, acl
