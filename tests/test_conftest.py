"""The suite's own guard (tests/conftest.py): a test during which a thread died of an exception fails; and
the database fixture leaves each test the database the migrations made."""

import threading

import psycopg
from psycopg import sql

from tests.fixtures import services

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


def _whole_database(conn) -> tuple[dict[str, str | None], list[tuple]]:
    """Every table's rows (as one digest) and every sequence's position."""
    rows = {table: conn.execute(sql.SQL("SELECT md5(string_agg(r::text, ',' ORDER BY r::text)) FROM {} AS r").format(
        sql.Identifier(table))).fetchone()[0] for table in services._tables(conn)}
    return rows, conn.execute("SELECT sequencename, last_value FROM pg_sequences ORDER BY 1").fetchall()


def test_the_database_is_emptied_back_to_what_the_migrations_left(database_url, db, registry):
    """What a test leaves behind is gone before the next: its rows, small or bulk; a serial it advanced
    and deleted the row of; a migration's row it changed or deleted (and no trigger counts the emptying)."""
    with psycopg.connect(database_url, autocommit=True) as conn:  # holds no lock the emptying waits for
        migrated = _whole_database(conn)
        registry.area()
        registry.device(registry.school())
        registry.target("city", "421300", value=0.9, deadline="2030-12-31", set_by="test")
        db.execute("DELETE FROM target")  # the row is gone, its id is used
        db.execute("INSERT INTO login_attempt (username, client_ip, succeeded) "
                   "SELECT 'u' || g, '192.0.2.1', false FROM generate_series(1, %s) AS g", (services._BULK_ROWS + 1,))
        db.execute("UPDATE patrol_rule SET enabled = NOT enabled")
        db.execute("DELETE FROM patrol_inhibition")
        assert _whole_database(conn) != migrated
        services._truncate_all(database_url)
        assert _whole_database(conn) == migrated
