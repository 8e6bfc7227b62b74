"""Files attached to directives, kept by the server with size and type limits.

A commune office opens a directive's attachment from a link in its inbox, often on
a slow line and without a staff login, so a file is served at a capability URL:
``/api/command/files/<id>?sig=<HMAC of id and content hash>``. Only someone who
was sent the directive (or the staff who issued it) holds the link; a forged or
altered link is refused. What a file *is* is decided by its first bytes, not by
the name or the type the browser claims, so an executable renamed ``.pdf`` is
refused (docs/command.md, "Attachments").
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

from diemcau.actors import Actor
from diemcau.command.models import StoredFile
from diemcau.command.timeutil import Clock, aware, now_from
from diemcau.command.writes import writing
from diemcau.errors import Forbidden, Invalid, NotFound
from diemcau.records import iso
from diemcau.security import Key, KeyRing
from diemcau.store import Database
from diemcau.text import nfc

__all__ = ["ALLOWED", "MAX_FILE_BYTES", "DirectiveFiles", "FileView", "sniff"]

# Largest attachment: a scanned official letter or a spreadsheet fits many times over,
# and a commune on a 1 Mbit/s line still opens it within two minutes.
MAX_FILE_BYTES = 10 * 1024 * 1024

UPLOADER_ROLES = ("admin", "chair", "province_officer")

# Extension -> (MIME type, content family the first bytes must show).
ALLOWED: dict[str, tuple[str, str]] = {
    "pdf": ("application/pdf", "pdf"),
    "png": ("image/png", "png"),
    "jpg": ("image/jpeg", "jpeg"),
    "jpeg": ("image/jpeg", "jpeg"),
    "docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "zip"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "zip"),
    "pptx": ("application/vnd.openxmlformats-officedocument.presentationml.presentation", "zip"),
    "odt": ("application/vnd.oasis.opendocument.text", "zip"),
    "ods": ("application/vnd.oasis.opendocument.spreadsheet", "zip"),
    "doc": ("application/msword", "ole"),
    "xls": ("application/vnd.ms-excel", "ole"),
    "txt": ("text/plain; charset=utf-8", "text"),
    "csv": ("text/csv; charset=utf-8", "text"),
}

_MAGIC = {
    "pdf": (b"%PDF-",),
    "png": (b"\x89PNG\r\n\x1a\n",),
    "jpeg": (b"\xff\xd8\xff",),
    "zip": (b"PK\x03\x04",),
    "ole": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",),
}


def sniff(data: bytes, family: str) -> bool:
    """Whether `data` starts the way files of `family` do (text: UTF-8 without NUL)."""
    if family == "text":
        if b"\x00" in data:
            return False
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return True
    return data.startswith(_MAGIC[family])


@dataclass(frozen=True)
class FileView:
    """A stored file as the compose form and a directive's attachment list name it."""

    id: int
    name: str
    mime: str
    size: int
    sha256: str
    url: str
    uploaded_by: str
    uploaded_at: datetime

    def attachment(self) -> dict[str, object]:
        """The directive attachment entry (`directives.Attachment`)."""
        return {
            "name": self.name,
            "url": self.url,
            "mime": self.mime,
            "size": self.size,
            "sha256": self.sha256,
        }

    def public(self) -> dict[str, object]:
        return {
            **self.attachment(),
            "id": self.id,
            "uploaded_by": self.uploaded_by,
            "uploaded_at": iso(self.uploaded_at),
        }


def _clean_name(name: str) -> str:
    clean = nfc(name).replace("/", "_").replace("\\", "_").strip(" .")
    if not clean or len(clean) > 200 or any(ord(c) < 32 for c in clean):
        raise Invalid("name: a file name needs 1 to 200 printable characters", code="bad_name")
    return clean


class DirectiveFiles:
    """Stores attachments and serves them back at signed links.

    Args:
        db: the store.
        key: the link key ring: the first key signs new links, every key still
            verifies (links stored in directives outlive a key rotation).
        clock: wall clock.
    """

    def __init__(self, db: Database, key: Key, clock: Clock) -> None:
        self.db = db
        self._ring = key if isinstance(key, KeyRing) else KeyRing([key])
        self.clock = clock

    def signature(self, file_id: int, sha256: str, key: bytes | None = None) -> str:
        """The link signature with `key` (the ring's first key when None)."""
        message = f"command-file:{file_id}:{sha256}".encode()
        mac = hmac.new(key or self._ring.current, message, hashlib.sha256)
        return mac.hexdigest()[:32]

    def _signed(self, sig: str, file_id: int, sha256: str) -> bool:
        """Whether `sig` was made by any key of the ring."""
        return any(
            hmac.compare_digest(sig, self.signature(file_id, sha256, k)) for k in self._ring.keys
        )

    def url(self, file_id: int, sha256: str) -> str:
        return f"/api/command/files/{file_id}?sig={self.signature(file_id, sha256)}"

    async def store(self, actor: Actor, name: str, data: bytes) -> FileView:
        """Check and keep one file; every check runs before anything is written.

        Raises:
            Forbidden: the actor may not issue directives.
            Invalid: empty, larger than `MAX_FILE_BYTES`, an extension not in
                `ALLOWED`, or content that is not what the extension says.
        """
        actor.require_role("attach files to directives", *UPLOADER_ROLES)
        clean = _clean_name(name)
        ext = clean.rsplit(".", 1)[-1].lower() if "." in clean else ""
        if ext not in ALLOWED:
            raise Invalid(
                f"name: '.{ext}' files cannot be attached (allowed: {', '.join(sorted(ALLOWED))})",
                code="bad_type",
            )
        if not data:
            raise Invalid("file: is empty", code="empty")
        if len(data) > MAX_FILE_BYTES:
            raise Invalid(f"file: larger than {MAX_FILE_BYTES // (1024 * 1024)} MB", code="too_big")
        mime, family = ALLOWED[ext]
        if not sniff(data, family):
            raise Invalid(f"file: the content is not a .{ext} file", code="bad_content")
        digest = hashlib.sha256(data).hexdigest()
        now = now_from(self.clock)
        async with writing(self.db) as s:
            row = StoredFile(
                name=clean,
                mime=mime,
                size=len(data),
                sha256=digest,
                data=data,
                uploaded_by=actor.label,
                province_id=actor.province_id,
                uploaded_at=now,
            )
            s.add(row)
            await s.flush()
            file_id = row.id
        return FileView(
            file_id, clean, mime, len(data), digest, self.url(file_id, digest), actor.label, now
        )

    async def fetch(self, file_id: int, sig: str) -> tuple[FileView, bytes]:
        """The file behind a signed link; a wrong signature looks like a missing file."""
        async with self.db.session() as s:
            row = await s.get(StoredFile, file_id)
        if row is None or not self._signed(sig, file_id, row.sha256):
            raise NotFound(f"file {file_id} does not exist", code="no_file")
        view = FileView(
            row.id,
            row.name,
            row.mime,
            row.size,
            row.sha256,
            self.url(row.id, row.sha256),
            row.uploaded_by,
            aware(row.uploaded_at),
        )
        return view, bytes(row.data)

    async def check_owned(self, actor: Actor, urls: list[str]) -> None:
        """Refuse attachment links to files of this server the actor could not have seen.

        A province officer may attach only files uploaded in its province (or
        nationally); links elsewhere than this server's file route are left alone.
        """
        for url in urls:
            if not url.startswith("/api/command/files/"):
                continue
            try:
                file_id = int(url.split("/")[4].split("?", 1)[0])
            except (IndexError, ValueError):
                raise Invalid(f"attachments: bad file link '{url}'", code="bad_file") from None
            sig = url.split("sig=", 1)[1] if "sig=" in url else ""
            async with self.db.session() as s:
                row = await s.get(StoredFile, file_id)
            if row is None or not self._signed(sig, file_id, row.sha256):
                raise Invalid(f"attachments: no file {file_id} on this server", code="no_file")
            if actor.province_id is not None and row.province_id not in (None, actor.province_id):
                raise Forbidden("attachments: a file of another province", code="other_province")
