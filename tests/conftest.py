"""Test suite set-up: fixtures live in tests/fixtures and are loaded as plugins; one guard lives here."""

import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

pytest_plugins = [
    "pytester",  # tests/test_conftest.py runs small pytest sessions against the guard below
    "tests.fixtures.services",
    "tests.fixtures.factories",
    "tests.fixtures.app",
    "tests.fixtures.devices",
    "tests.fixtures.demo",
    "tests.fixtures.browser",
]


@dataclass(frozen=True)
class ThreadFailure:
    """An exception that ended a thread."""

    thread: str
    exc_value: BaseException | None
    traceback: str


@pytest.fixture(autouse=True)
def thread_failures(request) -> Iterator[list[ThreadFailure]]:
    """Fail any test during which a thread died of an exception (ingest, patrol, paho, a test's own…).

    Installs a `threading.excepthook` for the test's set-up, run and teardown that records each
    thread's exception, restores the previous hook afterwards, and fails the test with every
    thread's name and traceback. A test that kills a thread on purpose opts out with
    `@pytest.mark.thread_may_raise`; it can request this fixture to see what was caught.
    """
    caught: list[ThreadFailure] = []

    def hook(args: threading.ExceptHookArgs) -> None:
        # the strings are made now: the thread and its frames may be gone by the teardown
        caught.append(ThreadFailure(
            "<unknown>" if args.thread is None else args.thread.name, args.exc_value,
            "".join(traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback))))

    previous = threading.excepthook
    threading.excepthook = hook
    try:
        yield caught
    finally:
        threading.excepthook = previous
    if caught and request.node.get_closest_marker("thread_may_raise") is None:
        pytest.fail("\n".join(f"thread {f.thread!r} raised during the test:\n{f.traceback}" for f in caught)
                    + "(mark the test thread_may_raise if that thread is meant to die)", pytrace=False)
