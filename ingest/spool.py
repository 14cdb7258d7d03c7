"""The worker's journal: messages on its own disk before the broker is told they arrived.

The broker keeps what it has not delivered in memory and saves it only every few seconds,
so a broker crash loses the backlog it holds. The worker therefore takes every message
off the broker as it arrives: a batch is written to a segment file and fsynced, and only
then acknowledged to the broker. The database writer reads the segments in order and
deletes each one after its rows are committed. A backlog (the database away or slower
than the devices) waits here, on disk, not in the broker.

A segment is a sequence of records: a header (arrival time as a double, topic length,
payload length, big-endian) followed by the topic and the payload. It is written under a
temporary name and renamed once whole, so a crash leaves either a whole segment or a
temporary file that nobody acknowledged (deleted at start; the broker redelivers it).
"""

import logging
import os
import struct
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

log = logging.getLogger(__name__)

_HEADER = struct.Struct(">dII")
_SUFFIX = ".seg"


class Spooled(NamedTuple):
    """A message as received: topic, payload and arrival time (a tuple: tens of thousands a second)."""

    topic: str
    payload: bytes
    received: float


class Spool:
    """Numbered segment files in one folder of this worker's own."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        directory.mkdir(parents=True, exist_ok=True)
        for partial in directory.glob("*.tmp"):
            partial.unlink()  # never acknowledged: the broker still has these messages
        self._segments = sorted(directory.glob(f"*{_SUFFIX}"))
        self._bytes = sum(p.stat().st_size for p in self._segments)
        self._next = int(self._segments[-1].stem) + 1 if self._segments else 1
        self._changed = threading.Condition()
        self.quarantined = 0  # unreadable segments set aside

    def append(self, messages: Iterable[tuple[str, bytes, float]]) -> None:
        """Write one segment of (topic, payload, arrival time) durably (fsync of file and folder) before returning."""
        pack = _HEADER.pack
        data = b"".join([pack(received, len(t := topic.encode()), len(payload)) + t + payload
                         for topic, payload, received in messages])
        with self._changed:
            number = self._next
            self._next += 1
        path = self.directory / f"{number:012d}{_SUFFIX}"
        partial = path.with_suffix(".tmp")
        with open(partial, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        partial.rename(path)
        self._sync_folder()
        with self._changed:
            self._segments.append(path)
            self._bytes += len(data)
            self._changed.notify_all()

    def _sync_folder(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def oldest(self, max_messages: int, timeout: float, after: Path | None = None) -> tuple[list[Path], list[Spooled]]:
        """The oldest segments holding up to `max_messages` (at least one segment), and their messages;
        with `after`, the oldest of those written after that segment (taken, not yet removed).

        Waits up to `timeout` seconds for a first segment; ([], []) if none came.
        """
        def waiting() -> list[Path]:
            return [p for p in self._segments if after is None or p.name > after.name]

        with self._changed:
            paths = waiting()
            if not paths:
                self._changed.wait(timeout)
                paths = waiting()
        taken: list[Path] = []
        messages: list[Spooled] = []
        for path in paths:
            try:
                batch = read_segment(path)
            except (ValueError, struct.error) as exc:  # a damaged disk, not a message
                self._quarantine(path, exc)
                continue
            if taken and len(messages) + len(batch) > max_messages:
                break
            taken.append(path)
            messages.extend(batch)
        return taken, messages

    def _quarantine(self, path: Path, exc: Exception) -> None:
        # Kept beside the journal for an operator, out of the writer's way: one unreadable
        # file must not stop the worker, nor make it crash and restart forever.
        log.error("journal segment %s is unreadable (%s); kept as %s.bad", path.name, exc, path.stem)
        size = path.stat().st_size
        path.rename(path.with_suffix(".bad"))
        with self._changed:
            self._segments.remove(path)
            self._bytes -= size
        self.quarantined += 1

    def remove(self, paths: list[Path]) -> None:
        """Delete segments whose messages are committed to the database."""
        for path in paths:
            size = path.stat().st_size
            path.unlink()
            with self._changed:
                self._segments.remove(path)
                self._bytes -= size
                self._changed.notify_all()

    def wait_for_room(self, stop: threading.Event) -> None:
        """Block while the spool is over its size bound (backpressure on the broker)."""
        with self._changed:
            while self._bytes >= self.max_bytes and not stop.is_set():
                self._changed.wait(0.5)

    @property
    def segments(self) -> int:
        """How many segments wait for the database."""
        return len(self._segments)

    @property
    def bytes(self) -> int:
        """How many bytes wait for the database."""
        return self._bytes


def read_segment(path: Path) -> list[Spooled]:
    """The messages of one segment, in the order they arrived."""
    data = path.read_bytes()
    messages, at, end, unpack, size = [], 0, len(data), _HEADER.unpack_from, _HEADER.size
    while at < end:
        received, topic_len, payload_len = unpack(data, at)
        at += size
        topic = data[at:at + topic_len].decode()
        at += topic_len
        if at + payload_len > end:
            raise ValueError(f"segment ends inside a message ({end} bytes)")
        messages.append(Spooled(topic, data[at:at + payload_len], received))
        at += payload_len
    return messages
