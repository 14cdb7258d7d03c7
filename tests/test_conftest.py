"""The suite's own guard (tests/conftest.py): a test during which a thread died of an exception fails."""

import threading

INNER_TESTS = '''
import threading

import pytest


def _die():
    raise RuntimeError("boom in a thread")


def dying_thread():
    t = threading.Thread(target=_die, name="doomed")
    t.start()
    t.join()


def test_a_thread_raises():
    dying_thread()


@pytest.mark.thread_may_raise
def test_a_thread_may_raise(thread_failures):
    dying_thread()
    assert [(f.thread, str(f.exc_value)) for f in thread_failures] == [("doomed", "boom in a thread")]


def test_quiet_threads_pass():
    t = threading.Thread(target=lambda: None)
    t.start()
    t.join()
'''


def test_a_test_whose_thread_raises_fails_unless_it_opts_out(pytester, monkeypatch):
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")  # the inner session needs no installed plugin
    pytester.makeconftest("from tests.conftest import thread_failures  # noqa: F401\n")
    pytester.makeini("[pytest]\nmarkers =\n    thread_may_raise: a thread dies on purpose\n")
    pytester.makepyfile(test_inner=INNER_TESTS)
    before = threading.excepthook
    result = pytester.runpytest("-p", "no:cacheprovider", "--strict-markers", "-W", "error")
    assert threading.excepthook is before, "the guard put the previous hook back"
    # the raising test fails (at its teardown, where the guard looks); the opted-out and quiet ones pass
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_a_thread_raises*",
                                 "*thread 'doomed' raised during the test:*",
                                 "*RuntimeError: boom in a thread*",
                                 "*mark the test thread_may_raise*"])
    assert "test_a_thread_may_raise" not in "".join(line for line in result.stdout.lines if "ERROR" in line)
