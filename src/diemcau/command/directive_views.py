"""The shapes of a directive: what staff write, and what staff and sites read back.

`DirectiveIn` is validated on construction (pydantic) and refused whole when a site
could not be sent it (`check_size`); the views are what the API and the hub hand out
(docs/command.md, "Directives").
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from diemcau.command.aggregation import ProvinceLabel
from diemcau.command.models import Directive, DirectiveRecipient
from diemcau.command.targets import Target
from diemcau.command.timeutil import aware, aware_or_none
from diemcau.errors import Invalid
from diemcau.records import JsonObject, Record, iso

__all__ = [
    "ISSUER_ROLES",
    "MAX_MESSAGE_BODY",
    "Attachment",
    "DirectiveDetail",
    "DirectiveIn",
    "DirectiveView",
    "Priority",
    "ProvinceProgress",
    "RecipientRow",
    "RecipientState",
    "check_size",
    "directive_view",
    "recipient_row",
    "site_state",
]

Priority = Literal["low", "normal", "high", "urgent"]
ISSUER_ROLES = ("admin", "chair", "province_officer")
RecipientState = Literal[
    "all", "unacknowledged", "acknowledged", "incomplete", "completed", "overdue"
]


class Attachment(BaseModel):
    """Metadata of a file sent with a directive (the file itself lives elsewhere)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    url: str = Field(default="", max_length=1000)
    mime: str = Field(default="", max_length=100)
    size: int = Field(default=0, ge=0)
    sha256: str = Field(default="", pattern=r"^([0-9a-f]{64})?$")

    @field_validator("url")
    @classmethod
    def _safe_url(cls, value: str) -> str:
        if value and not value.startswith(("https://", "http://", "/")):
            raise ValueError("must be an http(s) URL or a path on this server")
        return value


class DirectiveIn(BaseModel):
    """A directive as staff write it."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=300)
    body: str = Field(min_length=1, max_length=20000)
    priority: Priority = "normal"
    deadline: datetime | None = None
    attachments: list[Attachment] = Field(default_factory=list, max_length=20)
    target: Target
    # A client-chosen id making a retried issue return the same directive.
    client_id: str | None = Field(default=None, min_length=8, max_length=64)

    @classmethod
    def parse(cls, data: Mapping[str, object]) -> DirectiveIn:
        """Validate `data`, raising `Invalid` that names the first bad field."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "directive"
            raise Invalid(f"{where}: {first.get('msg', 'invalid')}", code="bad_directive") from exc


@dataclass(frozen=True)
class _Progress:
    """How many sites a directive reached, acknowledged, completed, and let go overdue."""

    recipients: int
    acknowledged: int
    completed: int
    overdue: int

    def progress(self) -> JsonObject:
        """The four counts and the two rates (to 4 places)."""
        r = self.recipients or 1
        return {
            "recipients": self.recipients,
            "acknowledged": self.acknowledged,
            "completed": self.completed,
            "overdue": self.overdue,
            "ack_rate": round(self.acknowledged / r, 4),
            "completion_rate": round(self.completed / r, 4),
        }


@dataclass(frozen=True, kw_only=True)
class ProvinceProgress(_Progress):
    province_id: int | None

    def public(self) -> JsonObject:
        return {"province_id": self.province_id, **self.progress()}


@dataclass(frozen=True, kw_only=True)
class DirectiveView(_Progress):
    id: int
    title: str
    body: str
    priority: str
    deadline: datetime | None
    attachments: list[dict[str, object]]
    target: dict[str, object]
    issued_by: str
    issuer_province_id: int | None
    issued_at: datetime
    reminders: int
    escalated_at: datetime | None

    def _order(self) -> JsonObject:
        """What staff wrote: the start of both the staff view and the sites' message."""
        return {
            "id": self.id,
            "title": self.title,
            "body": self.body,
            "priority": self.priority,
            "deadline": iso(self.deadline),
            "attachments": self.attachments,
        }

    def public(self) -> JsonObject:
        return {
            **self._order(),
            "target": self.target,
            "issued_by": self.issued_by,
            "issuer_province_id": self.issuer_province_id,
            "issued_at": iso(self.issued_at),
            "reminders": self.reminders,
            "escalated_at": iso(self.escalated_at),
            **self.progress(),
        }

    def message(self) -> JsonObject:
        """The body a site receives (the same for every site: encoded once)."""
        return {
            **self._order(),
            "issued_at": iso(self.issued_at),
            "issued_by": self.issued_by,
        }


@dataclass(frozen=True)
class DirectiveDetail:
    """A directive with its progress per province (and the province's code and name)."""

    view: DirectiveView
    provinces: list[tuple[ProvinceProgress, ProvinceLabel | None]]

    def public(self) -> JsonObject:
        return {
            **self.view.public(),
            "provinces": [
                {
                    **p.public(),
                    "code": label.code if label is not None else None,
                    "name": label.name if label is not None else None,
                }
                for p, label in self.provinces
            ],
        }


# What one site message may carry (the hub's limit, less room for the envelope
# and the reminder fields).
MAX_MESSAGE_BODY = 60_000


def check_size(data: DirectiveIn) -> None:
    """Refuse a directive the hub could not deliver, before anything is stored."""
    probe = {
        "id": 2**31,
        "title": data.title,
        "body": data.body,
        "priority": data.priority,
        "deadline": "2000-01-01T00:00:00+00:00",
        "attachments": [a.model_dump() for a in data.attachments],
        "issued_at": "2000-01-01T00:00:00+00:00",
        "issued_by": "staff:" + "x" * 64,
        "reminder": 2**31,
    }
    size = len(json.dumps(probe, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_MESSAGE_BODY:
        raise Invalid(
            f"body: the directive is {size} bytes with its attachments list; at most "
            f"{MAX_MESSAGE_BODY} can be delivered (attach long texts as files)",
            code="too_big",
        )


@dataclass(frozen=True)
class RecipientRow(Record):
    """One receiving site of a directive with its state (a row of the recipients list)."""

    site_id: int
    code: str
    name: str
    province_id: int | None
    delivered_at: datetime | None
    acknowledged_at: datetime | None
    completed_at: datetime | None
    completion_note: str
    reminded: int


def recipient_row(rec: DirectiveRecipient, code: str, name: str) -> RecipientRow:
    return RecipientRow(
        site_id=rec.site_id,
        code=code,
        name=name,
        province_id=rec.province_id,
        delivered_at=aware_or_none(rec.delivered_at),
        acknowledged_at=aware_or_none(rec.acknowledged_at),
        completed_at=aware_or_none(rec.completed_at),
        completion_note=rec.completion_note,
        reminded=rec.reminded,
    )


def site_state(rec: DirectiveRecipient) -> JsonObject:
    return {
        "delivered_at": iso(aware_or_none(rec.delivered_at)),
        "acknowledged_at": iso(aware_or_none(rec.acknowledged_at)),
        "completed_at": iso(aware_or_none(rec.completed_at)),
        "completion_note": rec.completion_note,
        "reminded": rec.reminded,
    }


def directive_view(d: Directive, counts: tuple[int, int, int, int]) -> DirectiveView:
    n, ack, done, late = counts
    return DirectiveView(
        id=d.id,
        title=d.title,
        body=d.body,
        priority=d.priority,
        deadline=aware(d.deadline) if d.deadline else None,
        attachments=list(d.attachments or []),
        target=dict(d.target or {}),
        issued_by=d.issued_by,
        issuer_province_id=d.issuer_province_id,
        issued_at=aware(d.issued_at),
        reminders=d.reminders,
        escalated_at=aware(d.escalated_at) if d.escalated_at else None,
        recipients=n,
        acknowledged=ack,
        completed=done,
        overdue=late,
    )
