"""The finished files of recording (program, clips, minutes): their rows, digests and views.

A file is registered only once it is complete, with its SHA-256 taken then
(`integrity`), its size and, for media, its duration. Rows are never removed:
a deleted file keeps its row with who deleted it and when.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path

from sqlalchemy import delete, func, select

from diemcau.recording.config import RecordingConfig
from diemcau.recording.integrity import sha256_file
from diemcau.recording.models import RecordingFile, Timing
from diemcau.records import JsonObject, Record
from diemcau.store import Database

__all__ = ["FileStore", "FileView", "NewFile"]


@dataclass(frozen=True)
class FileView(Record):
    """A finished file as callers see it (its reply names the file, not its path)."""

    omit = frozenset({"path", "site_id"})

    id: int
    meeting_id: int
    kind: str
    path: str
    content_type: str
    size: int
    sha256: str
    duration_s: float | None
    site_id: int | None
    site_code: str | None
    site_name: str | None
    province_id: int | None
    floor_id: int | None
    started_at: datetime | None
    ended_at: datetime | None
    timing: list[Timing]
    created_at: datetime
    delete_after: datetime | None
    deleted_at: datetime | None

    @property
    def name(self) -> str:
        return Path(self.path).name

    def as_dict(self) -> JsonObject:
        return {**super().as_dict(), "name": self.name}


def _view(r: RecordingFile) -> FileView:
    """The row's columns of the same names as the view's fields."""
    values = {f.name: getattr(r, f.name) for f in fields(FileView)}
    values["timing"] = list(r.timing or [])
    return FileView(**values)


@dataclass(frozen=True)
class NewFile:
    """A finished file to register (``path`` relative to the recordings root)."""

    meeting_id: int
    kind: str
    path: str
    content_type: str
    duration_s: float | None = None
    site_id: int | None = None
    site_code: str | None = None
    site_name: str | None = None
    province_id: int | None = None
    floor_id: int | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    timing: list[Timing] = field(default_factory=list)
    delete_after: datetime | None = None


class FileStore:
    """Rows of finished files."""

    def __init__(self, db: Database, config: RecordingConfig) -> None:
        self.db = db
        self.config = config

    async def add(self, new: NewFile, now: datetime) -> FileView:
        """Register a complete file: its size and SHA-256 are taken now."""
        path = self.config.path(new.path)
        digest = await sha256_file(path)
        async with self.db.session() as s:
            row = RecordingFile(
                **{f.name: getattr(new, f.name) for f in fields(NewFile)},
                size=path.stat().st_size,
                sha256=digest,
                created_at=now,
            )
            s.add(row)
            await s.flush()
            return _view(row)

    async def get(self, file_id: int) -> FileView | None:
        async with self.db.session() as s:
            row = await s.get(RecordingFile, file_id)
            return _view(row) if row is not None else None

    async def of_meeting(
        self, meeting_id: int, kinds: Collection[str] | None = None, *, deleted: bool = False
    ) -> list[FileView]:
        q = select(RecordingFile).where(RecordingFile.meeting_id == meeting_id)
        if kinds is not None:
            q = q.where(RecordingFile.kind.in_(list(kinds)))
        if not deleted:
            q = q.where(RecordingFile.deleted_at.is_(None))
        async with self.db.session() as s:
            rows = await s.scalars(q.order_by(RecordingFile.started_at, RecordingFile.id))
            return [_view(r) for r in rows]

    async def drop_unfinished(self, meeting_id: int, kinds: Collection[str]) -> None:
        """Forget rows of ``kinds`` before a meeting is processed again (files are rewritten)."""
        async with self.db.session() as s:
            await s.execute(
                delete(RecordingFile).where(
                    RecordingFile.meeting_id == meeting_id,
                    RecordingFile.kind.in_(list(kinds)),
                    RecordingFile.deleted_at.is_(None),
                )
            )

    async def due(self, now: datetime, limit: int = 500) -> list[FileView]:
        """Files whose retention has passed and that are not deleted yet."""
        async with self.db.session() as s:
            rows = await s.scalars(
                select(RecordingFile)
                .where(
                    RecordingFile.deleted_at.is_(None),
                    RecordingFile.delete_after.is_not(None),
                    RecordingFile.delete_after <= now,
                )
                .order_by(RecordingFile.delete_after, RecordingFile.id)
                .limit(limit)
            )
            return [_view(r) for r in rows]

    async def live_bytes(self) -> int:
        """The total size of files not deleted."""
        async with self.db.session() as s:
            total = await s.scalar(
                select(func.coalesce(func.sum(RecordingFile.size), 0)).where(
                    RecordingFile.deleted_at.is_(None)
                )
            )
            return int(total or 0)
