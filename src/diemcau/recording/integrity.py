"""SHA-256 of finished files, and the check that a file about to be served is still that file.

A digest is taken when a file is finished and stored with its row. Before a file
is served its digest is taken again and compared; a mismatch (or a missing file)
is reported and the file is not served. Browsers fetch a video in many byte
ranges, so a verified file is remembered by its inode, size, modification and
change times: writing to the file (or touching its times, which moves the
change time, settable by no one) forgets it and the next request hashes again.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["IntegrityError", "Verifier", "sha256_file"]

_CHUNK = 1 << 20


class IntegrityError(Exception):
    """A stored file is missing or no longer matches its recorded digest."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path.name}: {reason}")
        self.path = path
        self.reason = reason


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


async def sha256_file(path: Path) -> str:
    """The hex SHA-256 of a file, computed off the event loop."""
    return await asyncio.to_thread(_digest, path)


@dataclass(frozen=True)
class _Seen:
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int


def _seen(st: os.stat_result) -> _Seen:
    return _Seen(st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class Verifier:
    """Checks files against their digests, remembering files already verified unchanged."""

    def __init__(self) -> None:
        self._ok: dict[Path, tuple[_Seen, str]] = {}

    async def verify(self, path: Path, expected: str) -> None:
        """Raise `IntegrityError` unless ``path`` exists and hashes to ``expected``."""
        try:
            st = path.stat()
        except FileNotFoundError:
            self._ok.pop(path, None)
            raise IntegrityError(path, "the file is missing") from None
        seen = _seen(st)
        if self._ok.get(path) == (seen, expected):
            return
        actual = await sha256_file(path)
        if actual != expected:
            self._ok.pop(path, None)
            raise IntegrityError(path, f"SHA-256 is {actual}, recorded {expected}")
        self._ok[path] = (seen, expected)

    def forget(self, path: Path) -> None:
        self._ok.pop(path, None)
