"""The broker's password file and access list, made from the device registry.

Every registered device logs in as itself (username = device id; password derived from
the provisioning secret, see core.credentials) and may publish only under its own
topics and read only its own commands. The platform's services share one account
that may read every device topic, send commands and publish operations notices.
Nobody logs in anonymously.

The password file holds only salted PBKDF2-SHA512 hashes in Mosquitto's own format,
so it is written here directly (one external hashing process per device would take
hours for a province). `cockpit broker-auth` rewrites both files after devices are
registered; a running broker re-reads them on SIGHUP.

With a certificate and key configured (COCKPIT_MQTT_TLS_CERT_FILE, _KEY_FILE) the same
command also writes `conf.d/tls.conf`, a TLS listener the broker's configuration
includes, so devices outside the bureau's network connect encrypted. A new listener
needs a broker restart, not just SIGHUP.
"""

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.rows import tuple_row

from core import contract
from core.contract import Channel
from core.credentials import device_password

PLATFORM_USER = "platform"
OPS_ROOT = "edu/ops"  # operations notices (patrol)
MIN_SECRET = 16
_ITERATIONS = 101  # Mosquitto 2.0's own default for its PBKDF2-SHA512 ("$7$") hashes
_SALT_BYTES = 12


def password_hash(password: str, salt: bytes | None = None) -> str:
    """A Mosquitto 2.0 password-file hash ($7$: PBKDF2-SHA512) of the password."""
    salt = salt if salt is not None else os.urandom(_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, _ITERATIONS)
    return f"$7${_ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def acl_text() -> str:
    """The access list: devices confined to their own topics; the platform account to what services need."""
    own = {Channel.TELEMETRY: "write", Channel.EVENT: "write", Channel.STATUS: "write", Channel.ACK: "write",
           Channel.COMMAND: "read"}
    device_rules = "".join(f"pattern {access} {contract.topic('%u', channel)}\n" for channel, access in own.items())
    return (f"# written by `cockpit broker-auth`; devices log in as their own id\n"
            f"user {PLATFORM_USER}\n"
            f"topic readwrite {contract.TOPIC_ROOT}/#\n"
            f"topic readwrite {OPS_ROOT}/#\n"
            f"topic read $SYS/#\n\n"
            f"{device_rules}")


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


def write_files(conn: psycopg.Connection, directory: Path, provisioning_secret: str,
                platform_password: str, tls: TlsListener | None = None) -> tuple[Path, Path]:
    """Write passwords (every registered device and the platform account), the access list and
    the included listeners (`conf.d/`); return the paths of the first two."""
    for name, value in (("provisioning secret", provisioning_secret), ("platform password", platform_password)):
        if len(value or "") < MIN_SECRET:
            raise ValueError(f"the {name} must not be empty or shorter than {MIN_SECRET} characters")
    directory.mkdir(parents=True, exist_ok=True)
    passwords, acl = directory / "passwords", directory / "acl"
    lines = [f"{PLATFORM_USER}:{password_hash(platform_password)}\n"]
    for (device_id,) in conn.cursor(row_factory=tuple_row).execute("SELECT id FROM device ORDER BY id"):
        lines.append(f"{device_id}:{password_hash(device_password(provisioning_secret, device_id))}\n")
    included = directory / "conf.d"
    included.mkdir(exist_ok=True)
    listener = included / "tls.conf"
    files = [(passwords, "".join(lines)), (acl, acl_text())]
    if tls:
        files.append((listener, tls.conf()))
    else:
        listener.unlink(missing_ok=True)
    for path, text in files:
        partial = path.with_suffix(".new")
        partial.write_text(text)
        partial.chmod(0o600)
        partial.replace(path)  # a broker reloading meanwhile reads the old file or the new one, never half
    return passwords, acl
