"""What a running diemcau process writes to stderr: one line per event, for an operator.

A service that keeps running through a fault (the store briefly locked or down, a
media node unreachable, a peer that hung up) logs each failed attempt and retries.
Such failures are expected in the field, and a traceback per retry buries the one
line that matters, so they are written as ``message (Type: first line)``. Anything
else that is logged with an exception is a bug and keeps its traceback, as does
every record when ``DIEMCAU_DEBUG=1``.
"""

from __future__ import annotations

import logging
import os
import sys

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from diemcau.store.reach import StoreUnavailable

__all__ = ["EXPECTED_FAULTS", "OperatorFormatter", "configure", "one_line"]

# Failures of the outside world a service retries: logged in one line.
EXPECTED_FAULTS: tuple[type[BaseException], ...] = (
    DBAPIError,  # SQLite locked, PostgreSQL restarting or unreachable
    PoolTimeout,
    StoreUnavailable,
    ConnectionError,
    TimeoutError,
)

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def one_line(exc: BaseException) -> str:
    """``Type: first line of the reason`` (for a database error, the driver's reason)."""
    # A DBAPIError's text starts with the driver's reason, then the SQL and parameters.
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")


class OperatorFormatter(logging.Formatter):
    """Expected faults in one line; unexpected exceptions (bugs) with their traceback."""

    def __init__(self, *, debug: bool = False) -> None:
        super().__init__(_FORMAT)
        self.debug = debug

    def format(self, record: logging.LogRecord) -> str:
        exc = record.exc_info[1] if record.exc_info else None
        if self.debug or exc is None or not isinstance(exc, EXPECTED_FAULTS):
            return super().format(record)
        line = super().formatMessage(self._with_time(record))
        return f"{line} ({one_line(exc)})"

    def _with_time(self, record: logging.LogRecord) -> logging.LogRecord:
        record.message = record.getMessage()
        record.asctime = self.formatTime(record, self.datefmt)
        return record


def configure(*, debug: bool | None = None) -> None:
    """Send warnings and errors of every diemcau logger to stderr, formatted for people.

    Called once by the command line; libraries' own handlers (uvicorn's) are left alone.
    """
    if debug is None:
        debug = bool(os.environ.get("DIEMCAU_DEBUG"))
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OperatorFormatter(debug=debug))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h.formatter, OperatorFormatter)]:
        root.removeHandler(old)
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.WARNING:
        root.setLevel(logging.WARNING)
