"""The minutes' life: a draft the chair or secretary edits, then published once to every site.

Publishing freezes the facts, writes the HTML and the PDF (registered with their
SHA-256 like every recording file) and sends every participant a conclusion
carrying the PDF: the sites' acknowledgements of that conclusion are the
minutes' read receipts. Edits carry the draft's version, so two secretaries
editing at once cannot overwrite each other silently (409).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from diemcau.actors import Actor
from diemcau.errors import Conflict, Invalid
from diemcau.recording.auditing import audit
from diemcau.recording.config import RecordingConfig
from diemcau.recording.files import FileStore, FileView, NewFile
from diemcau.recording.minutes import MAX_TEXT, TEXT_FIELDS, MinutesContent
from diemcau.recording.models import MinutesRow
from diemcau.recording.ports import ConclusionPublisher
from diemcau.recording.render import minutes_html, minutes_pdf
from diemcau.records import JsonObject, Record
from diemcau.store import Database

__all__ = ["MinutesBook", "MinutesState", "site_minutes_url"]


def site_minutes_url(meeting_id: int, fmt: str = "pdf") -> str:
    """Where a site fetches the published minutes with its own credential."""
    return f"/api/site/meetings/{meeting_id}/minutes.{fmt}"


@dataclass(frozen=True)
class MinutesState(Record):
    """The stored minutes of a meeting (a draft that was never saved has version 0)."""

    omit = frozenset({"snapshot"})

    meeting_id: int
    state: str
    texts: dict[str, str]
    version: int
    edited_by: str
    edited_at: datetime | None
    published_at: datetime | None
    published_by: str | None
    conclusion_id: int | None
    html_file_id: int | None
    pdf_file_id: int | None
    snapshot: JsonObject | None

    @property
    def published(self) -> bool:
        return self.state == "published"


def _state(row: MinutesRow | None, meeting_id: int) -> MinutesState:
    if row is None:
        return MinutesState(
            meeting_id,
            "draft",
            {k: "" for k in TEXT_FIELDS},
            0,
            "",
            None,
            None,
            None,
            None,
            None,
            None,
            None,
        )
    return MinutesState(
        row.meeting_id,
        row.state,
        {k: str((row.texts or {}).get(k, "")) for k in TEXT_FIELDS},
        row.version,
        row.edited_by,
        row.edited_at,
        row.published_at,
        row.published_by,
        row.conclusion_id,
        row.html_file_id,
        row.pdf_file_id,
        row.snapshot,
    )


def clean_texts(texts: Mapping[str, object]) -> dict[str, str]:
    """Check and NFC-normalise the written parts; an unknown part is refused."""
    unknown = sorted(set(texts) - set(TEXT_FIELDS))
    if unknown:
        raise Invalid(
            f"unknown minutes part(s) {', '.join(unknown)}; parts: {', '.join(TEXT_FIELDS)}",
            code="bad_minutes",
        )
    out: dict[str, str] = {}
    for key, value in texts.items():
        if not isinstance(value, str):
            raise Invalid(f"minutes part {key} must be text", code="bad_minutes")
        text = unicodedata.normalize("NFC", value).strip()
        if len(text) > MAX_TEXT:
            raise Invalid(
                f"minutes part {key} is longer than {MAX_TEXT} characters", code="bad_minutes"
            )
        out[key] = text
    return out


@dataclass(eq=False)
class MinutesBook:
    """Drafts and publications of minutes."""

    db: Database
    config: RecordingConfig
    files: FileStore
    publish_conclusion: ConclusionPublisher | None
    # A signed link to a file: site terminals open attachments as plain links.
    link: Callable[[FileView], str] | None = None

    async def get(self, meeting_id: int) -> MinutesState:
        async with self.db.session() as s:
            return _state(await s.get(MinutesRow, meeting_id), meeting_id)

    async def edit(
        self,
        actor: Actor,
        meeting_id: int,
        texts: Mapping[str, object],
        version: int,
        now: datetime,
    ) -> MinutesState:
        """Save the written parts of a draft; ``version`` must be the one last read."""
        clean = clean_texts(texts)
        async with self.db.session() as s:
            row = await s.get(MinutesRow, meeting_id)
            current = row.version if row is not None else 0
            if row is not None and row.state == "published":
                raise Conflict(
                    "the minutes are published and can no longer change", code="published"
                )
            if version != current:
                raise Conflict(
                    f"the draft changed meanwhile (version {current}, you edited {version}); "
                    "reload it",
                    code="stale_draft",
                )
            if row is None:
                row = MinutesRow(meeting_id=meeting_id, state="draft", texts={}, version=0)
                s.add(row)
            row.texts = {**{k: "" for k in TEXT_FIELDS}, **dict(row.texts or {}), **clean}
            row.version = current + 1
            row.edited_by = actor.label[:200]
            row.edited_at = now
            await audit(
                s,
                actor,
                "minutes.edit",
                meeting_id,
                details={"version": row.version, "parts": sorted(clean)},
                at=now,
            )
            return _state(row, meeting_id)

    def _write(self, name: str, data: bytes) -> str:
        path = self.config.path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".partial")
        tmp.write_bytes(data)
        tmp.replace(path)
        return name

    async def publish(
        self, actor: Actor, content: MinutesContent, ended: bool, now: datetime
    ) -> MinutesState:
        """Freeze, render, register and send the minutes to every participant."""
        meeting_id = content.meeting_id
        if not ended:
            raise Conflict("minutes are published after the meeting has ended", code="not_ended")
        state = await self.get(meeting_id)
        if state.published:
            raise Conflict("the minutes are already published", code="published")
        version = max(1, state.version)
        stem = f"m{meeting_id}/minutes-v{version}"
        html_name = self._write(f"{stem}.html", minutes_html(content).encode())
        pdf_name = self._write(f"{stem}.pdf", minutes_pdf(content))
        html_file = await self.files.add(
            NewFile(meeting_id, "minutes_html", html_name, "text/html; charset=utf-8"), now
        )
        pdf_file = await self.files.add(
            NewFile(meeting_id, "minutes_pdf", pdf_name, "application/pdf"), now
        )
        conclusion_id = await self._send(actor, content, pdf_file)
        async with self.db.session() as s:
            row = await s.get(MinutesRow, meeting_id)
            if row is None:
                row = MinutesRow(meeting_id=meeting_id, texts=dict(content.texts), version=version)
                s.add(row)
            row.state = "published"
            row.published_at = now
            row.published_by = actor.label[:200]
            row.conclusion_id = conclusion_id
            row.html_file_id = html_file.id
            row.pdf_file_id = pdf_file.id
            row.snapshot = content.as_json()
            await audit(
                s,
                actor,
                "minutes.publish",
                meeting_id,
                details={
                    "version": version,
                    "pdf_sha256": pdf_file.sha256,
                    "conclusion_id": conclusion_id,
                },
                at=now,
            )
            return _state(row, meeting_id)

    async def _send(self, actor: Actor, content: MinutesContent, pdf: FileView) -> int | None:
        if self.publish_conclusion is None:
            return None
        body = (
            f"Biên bản cuộc họp «{content.title}» đã được ban hành; "
            "đề nghị điểm cầu đọc và xác nhận. / The minutes of this meeting are published: "
            "please read and acknowledge."
        )
        attachment = {
            "name": f"bien-ban-{content.meeting_id}.pdf",
            "url": self.link(pdf) if self.link else site_minutes_url(content.meeting_id),
            "size": pdf.size,
            "content_type": "application/pdf",
            "sha256": pdf.sha256,
        }
        return await self.publish_conclusion(actor, content.meeting_id, body, [attachment])
