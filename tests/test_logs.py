"""Log lines for operators (diemcau.logs): expected faults in one line, bugs with a traceback.

Tried: a SQLite "database is locked" as SQLAlchemy raises it (with its SQL and
parameters), a pool timeout, a refused connection, a plain bug (ValueError), a record
without an exception, and the same fault with DIEMCAU_DEBUG=1.
"""

from __future__ import annotations

import io
import logging
import sqlite3
from collections.abc import Iterator

import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from diemcau import logs


@pytest.fixture
def logger() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logs.OperatorFormatter())
    log = logging.getLogger("diemcau.test_logs")
    log.addHandler(handler)
    log.propagate = False
    try:
        yield log, out
    finally:
        log.removeHandler(handler)
        log.propagate = True


def _locked() -> OperationalError:
    orig = sqlite3.OperationalError("database is locked")
    return OperationalError("INSERT INTO presence_events (site_id) VALUES (?)", [(1,)], orig)


def _log_raised(log: logging.Logger, exc: BaseException, message: str) -> None:
    try:
        raise exc
    except BaseException:
        log.exception(message)


def test_a_locked_store_is_one_line(logger: tuple[logging.Logger, io.StringIO]) -> None:
    log, out = logger
    _log_raised(log, _locked(), "writing 248 presence transitions failed; retrying")
    text = out.getvalue()
    assert text.count("\n") == 1, text
    assert "writing 248 presence transitions failed; retrying" in text
    assert "(OperationalError: database is locked)" in text
    assert "Traceback" not in text and "INSERT" not in text


@pytest.mark.parametrize(
    "exc",
    [PoolTimeout("QueuePool limit reached"), ConnectionRefusedError(111, "refused")],
    ids=["pool-timeout", "connection-refused"],
)
def test_other_expected_faults_are_one_line(
    logger: tuple[logging.Logger, io.StringIO], exc: BaseException
) -> None:
    log, out = logger
    _log_raised(log, exc, "media sync failed")
    text = out.getvalue()
    assert text.count("\n") == 1 and "Traceback" not in text, text
    assert f"({type(exc).__name__}: " in text


def test_a_bug_keeps_its_traceback(logger: tuple[logging.Logger, io.StringIO]) -> None:
    log, out = logger
    _log_raised(log, ValueError("bad state"), "presence listener failed")
    text = out.getvalue()
    assert "Traceback (most recent call last)" in text
    assert "ValueError: bad state" in text


def test_a_record_without_exception_is_plain(logger: tuple[logging.Logger, io.StringIO]) -> None:
    log, out = logger
    log.warning("node %s down", "relay-1")
    assert out.getvalue().rstrip().endswith("WARNING diemcau.test_logs: node relay-1 down")


def test_debug_shows_every_traceback() -> None:
    formatter = logs.OperatorFormatter(debug=True)
    try:
        raise _locked()
    except OperationalError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    assert "Traceback" in formatter.format(record)


def test_configure_installs_one_handler(monkeypatch: pytest.MonkeyPatch) -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    monkeypatch.delenv("DIEMCAU_DEBUG", raising=False)
    try:
        logs.configure()
        logs.configure()  # a second call (tests, embedded use) replaces, never doubles
        ours = [h for h in root.handlers if isinstance(h.formatter, logs.OperatorFormatter)]
        assert len(ours) == 1
        assert isinstance(ours[0].formatter, logs.OperatorFormatter)
        assert not ours[0].formatter.debug
    finally:
        for h in list(root.handlers):
            if h not in before:
                root.removeHandler(h)
