"""Keeping the recordings folder within bounds: deletion when retention ends, and disk watch.

Every deletion (by the retention sweep or by an admin) removes the file, keeps its
row with who and when, and writes an audit record in the same transaction.
The disk watch reports the folder's disk usage and the rate at which the live
recordings grow, and raises a command-center alert before the disk fills: a
warning at ``warn_fraction`` used or less than an hour left at the current rate,
critical at ``critical_fraction`` or below ``min_free_bytes``.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from diemcau.actors import Actor
from diemcau.errors import Conflict, NotFound
from diemcau.recording.auditing import audit
from diemcau.recording.config import RecordingConfig
from diemcau.recording.files import FileStore, FileView
from diemcau.recording.models import RecordingFile
from diemcau.recording.ports import AlertSink, Severity
from diemcau.records import JsonObject
from diemcau.store import Database

__all__ = ["DISK_ALERT", "DiskUsage", "DiskWatch", "Retention"]

log = logging.getLogger(__name__)

DISK_ALERT = "recording_disk"


@dataclass(frozen=True)
class DiskUsage:
    """The recordings' disk: size, use, what recordings take, and time left."""

    total_bytes: int
    used_bytes: int
    free_bytes: int
    recordings_bytes: int
    live_bytes: int
    rate_bytes_s: float
    seconds_left: float | None
    level: str  # ok | warning | critical

    @property
    def used_fraction(self) -> float:
        return self.used_bytes / self.total_bytes if self.total_bytes else 0.0

    def as_dict(self) -> JsonObject:
        return {
            "total_bytes": self.total_bytes,
            "used_bytes": self.used_bytes,
            "free_bytes": self.free_bytes,
            "used_fraction": round(self.used_fraction, 4),
            "recordings_bytes": self.recordings_bytes,
            "live_bytes": self.live_bytes,
            "rate_bytes_s": round(self.rate_bytes_s, 1),
            "seconds_left": None if self.seconds_left is None else round(self.seconds_left),
            "level": self.level,
        }


class Retention:
    """Deletes files whose time has come, or that an admin deletes, with an audit record."""

    def __init__(self, db: Database, config: RecordingConfig, files: FileStore) -> None:
        self.db = db
        self.config = config
        self.files = files

    async def delete(self, actor: Actor, file: FileView, reason: str, now: datetime) -> FileView:
        if file.deleted_at is not None:
            raise Conflict(f"file {file.id} was already deleted", code="deleted")
        path = self.config.path(file.path)
        async with self.db.session() as s:
            row = await s.get(RecordingFile, file.id)
            if row is None:
                raise NotFound(f"recording file {file.id} not found", code="no_file")
            row.deleted_at = now
            row.deleted_by = actor.label[:200]
            await audit(
                s,
                actor,
                "recording.delete",
                file.meeting_id,
                target=file.name,
                details={
                    "file_id": file.id,
                    "kind": file.kind,
                    "sha256": file.sha256,
                    "size": file.size,
                    "reason": reason,
                },
                at=now,
            )
        # Only once the deletion and its audit record are committed.
        path.unlink(missing_ok=True)
        deleted = await self.files.get(file.id)
        assert deleted is not None
        return deleted

    async def sweep(self, now: datetime) -> int:
        """Delete every file whose retention has passed; returns how many."""
        count = 0
        system = Actor.system("retention")
        for file in await self.files.due(now):
            try:
                await self.delete(system, file, "retention", now)
                count += 1
            except (Conflict, NotFound, OSError) as exc:
                log.warning("retention could not delete file %s: %s", file.id, exc)
        return count


def _existing(path: Path) -> Path:
    """``path`` or its nearest existing parent (the folder is made at the first recording)."""
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def _folder_bytes(folder: Path) -> int:
    total = 0
    if folder.is_dir():
        for p in folder.rglob("*"):
            try:
                if p.is_file():
                    total += p.stat().st_size
            except OSError:
                continue
    return total


class DiskWatch:
    """Measures the recordings' disk and raises or clears the disk alert."""

    def __init__(
        self,
        config: RecordingConfig,
        files: FileStore,
        alerts: AlertSink | None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.files = files
        self.alerts = alerts
        self._monotonic = monotonic
        self._last: tuple[float, int] | None = None
        self._raised: str | None = None

    async def usage(self, live_folders: list[str]) -> DiskUsage:
        disk = shutil.disk_usage(_existing(self.config.root))
        live = sum(_folder_bytes(self.config.path(f)) for f in live_folders)
        now = self._monotonic()
        rate = 0.0
        if self._last is not None and now > self._last[0] and live >= self._last[1]:
            rate = (live - self._last[1]) / (now - self._last[0])
        self._last = (now, live)
        left = disk.free / rate if rate > 0 else None
        used = disk.total - disk.free
        fraction = used / disk.total if disk.total else 0.0
        level = "ok"
        if fraction >= self.config.critical_fraction or disk.free < self.config.min_free_bytes:
            level = "critical"
        elif fraction >= self.config.warn_fraction or (left is not None and left < 3600):
            level = "warning"
        return DiskUsage(
            disk.total,
            used,
            disk.free,
            await self.files.live_bytes() + live,
            live,
            rate,
            left,
            level,
        )

    async def check(self, live_folders: list[str]) -> DiskUsage:
        """Measure, then raise (or refresh) or clear the alert."""
        usage = await self.usage(live_folders)
        if self.alerts is None:
            return usage
        if usage.level == "ok":
            if self._raised is not None:
                await self.alerts.clear_alert(DISK_ALERT, "recordings")
                self._raised = None
            return usage
        gib = usage.free_bytes / 1024**3
        left = (
            f"; ~{usage.seconds_left / 60:.0f} phút / min left at the current rate"
            if usage.seconds_left is not None
            else ""
        )
        severity: Severity = "critical" if usage.level == "critical" else "warning"
        await self.alerts.raise_alert(
            DISK_ALERT,
            "recordings",
            message_vi=f"Ổ đĩa lưu ghi hình sắp đầy: dùng {usage.used_fraction:.0%}, "
            f"còn {gib:.1f} GiB{left}",
            message_en=f"Recordings disk nearly full: {usage.used_fraction:.0%} used, "
            f"{gib:.1f} GiB free{left}",
            severity=severity,
            details=usage.as_dict(),
        )
        self._raised = usage.level
        return usage
