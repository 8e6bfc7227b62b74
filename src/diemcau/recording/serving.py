"""Handing out finished files: the integrity check before every serve, and watch tickets.

A file is served only once its SHA-256 matches the digest taken when it was
finished; a file that does not is reported (an audit record, a critical
command-center alert) and refused with `Tampered`. A ``<video>`` element cannot
send the staff token, so a player gets a watch ticket: a signed, file-bound URL
(docs/recording.md). Who may fetch what is decided before, in `access`.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import KW_ONLY, InitVar, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from diemcau.actors import Actor
from diemcau.errors import DomainError, Forbidden, NotFound
from diemcau.recording.auditing import audit
from diemcau.recording.config import RecordingConfig
from diemcau.recording.files import FileStore, FileView
from diemcau.recording.integrity import IntegrityError, Verifier
from diemcau.recording.ports import AlertSink
from diemcau.security import TokenError, sign_token, verify_token
from diemcau.store import Database

__all__ = ["FileDesk", "INTEGRITY_ALERT", "Served", "Tampered"]

INTEGRITY_ALERT = "recording_integrity"
# A watch ticket outlives the file's own length by this much (pauses, seeking back).
TICKET_MARGIN_S = 900
TICKET_MAX_S = 12 * 3600
# The published minutes' link in the conclusion every site receives.
MINUTES_LINK_S = 400 * 86400


class Tampered(DomainError):
    """A stored file no longer matches the digest taken when it was finished."""

    status = 409
    code = "tampered"


@dataclass(frozen=True)
class Served:
    """A file cleared for serving: where it is and what it is."""

    path: Path
    file: FileView


@dataclass(eq=False)
class FileDesk:
    """Checks files before they are served and signs their watch tickets.

    Args:
        key: the instance key; tickets are signed with a key derived from it, never
            the session-token key itself, so a ticket cannot pass for a login.
    """

    db: Database
    config: RecordingConfig
    files: FileStore
    alerts: AlertSink | None
    _: KW_ONLY
    key: InitVar[bytes]
    clock: Callable[[], float]
    verifier: Verifier = field(init=False, default_factory=Verifier)
    _key: bytes = field(init=False)

    def __post_init__(self, key: bytes) -> None:
        self._key = hmac.new(key, b"diemcau recording watch ticket", hashlib.sha256).digest()

    async def get(self, file_id: int) -> FileView:
        """A file not deleted, or `NotFound`."""
        file = await self.files.get(file_id)
        if file is None or file.deleted_at is not None:
            raise NotFound(f"recording file {file_id} not found", code="no_file")
        return file

    async def checked(self, file: FileView) -> Served:
        """``file`` cleared for serving, or `Tampered` (reported) when it changed."""
        path = self.config.path(file.path)
        try:
            await self.verifier.verify(path, file.sha256)
        except IntegrityError as exc:
            await self._report(file, exc.reason)
            raise Tampered(
                f"file {file.id} ({file.name}) failed its integrity check: {exc.reason}; "
                "it is not served and the incident is recorded"
            ) from exc
        return Served(path, file)

    async def _report(self, file: FileView, reason: str) -> None:
        async with self.db.session() as s:
            await audit(
                s,
                Actor.system("integrity"),
                "recording.tampered",
                file.meeting_id,
                target=file.name,
                details={"file_id": file.id, "sha256": file.sha256, "reason": reason},
                at=datetime.fromtimestamp(self.clock(), UTC),
            )
        if self.alerts is not None:
            with contextlib.suppress(Exception):
                await self.alerts.raise_alert(
                    INTEGRITY_ALERT,
                    str(file.id),
                    message_vi=f"Tệp ghi hình {file.name} đã bị thay đổi hoặc mất: {reason}",
                    message_en=f"Recording file {file.name} was altered or is missing: {reason}",
                    severity="critical",
                    details={"file_id": file.id, "meeting_id": file.meeting_id},
                )

    def ticket(self, file: FileView, ttl: int, by: str) -> tuple[str, int]:
        """A ticket for ``file`` valid ``ttl`` seconds; returns (ticket, expiry)."""
        now = self.clock()
        ticket = sign_token(self._key, f"file:{file.id}", "watch", ttl, now=now, by=by)
        return ticket, int(now) + ttl

    def watch_ticket(self, file: FileView, by: str) -> tuple[str, int]:
        """A player's ticket: the file's length plus a margin, at most 12 h."""
        return self.ticket(file, min(TICKET_MAX_S, int(file.duration_s or 0) + TICKET_MARGIN_S), by)

    def minutes_link(self, file: FileView) -> str:
        """The minutes PDF's link in the conclusion the sites receive (site terminals open
        attachments as plain links, without their token); bound to that file only."""
        ticket, _ = self.ticket(file, MINUTES_LINK_S, "minutes")
        return f"/api/recordings/{file.id}/watch?ticket={ticket}"

    async def open_with_ticket(self, file_id: int, ticket: str) -> Served:
        """The file a ticket names, checked against its digest."""
        try:
            claims = verify_token(self._key, ticket, now=self.clock())
        except TokenError as exc:
            raise Forbidden(f"invalid watch ticket: {exc}", code="bad_ticket") from exc
        if claims.sub != f"file:{file_id}" or claims.role != "watch":
            raise Forbidden("this ticket is for another file", code="bad_ticket")
        return await self.checked(await self.get(file_id))
