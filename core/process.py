"""Process plumbing shared by every service: logging set-up and waiting for a stop signal."""

import json
import logging
import signal
import subprocess
import sys
import threading
from collections.abc import Callable


class JsonFormatter(logging.Formatter):
    """One JSON object per log line, with any `extra` ids (request_id, device_id) kept."""

    _STANDARD = set(vars(logging.makeLogRecord({})))

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in self._STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(service: str, level: str = "INFO", json_logs: bool = True) -> None:
    """Send this process's logs to stderr, as JSON lines tagged with the service name."""
    handler = logging.StreamHandler(sys.stderr)
    if json_logs:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    old_factory = logging.getLogRecordFactory()

    def factory(*args, **kwargs):
        record = old_factory(*args, **kwargs)
        record.service = service
        return record

    logging.setLogRecordFactory(factory)
    for chatty in ("httpx", "werkzeug"):  # one line per request: too much for a service log
        logging.getLogger(chatty).setLevel(logging.WARNING)


def wait_for_shutdown(failed: threading.Event | None = None) -> None:
    """Block the main thread until SIGINT or SIGTERM arrives, or until `failed` is set."""
    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    while not stopped.wait(1) and not (failed and failed.is_set()):
        pass


def run_until_shutdown(target: Callable[[threading.Event], object], name: str, join_timeout_s: float = 30) -> None:
    """Run `target(stop)` on a thread of its own until SIGINT or SIGTERM, then set `stop` and wait
    up to `join_timeout_s` for it to finish."""
    stop = threading.Event()
    worker = threading.Thread(target=target, args=(stop,), name=name)
    worker.start()
    try:
        wait_for_shutdown()
    finally:
        stop.set()
        worker.join(timeout=join_timeout_s)


def terminate(process: subprocess.Popen | None, timeout: float) -> None:
    """Ask a child process to stop (SIGTERM), and kill it if it has not within `timeout` seconds."""
    if process is not None and process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
