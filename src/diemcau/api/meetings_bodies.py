"""Request bodies of the meetings HTTP API: what a client may send, checked at the edge.

Each body refuses unknown fields and bounds every list and text, so a bad request gets
a clear 422 before any service runs (docs/meetings.md, "HTTP endpoints").
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from diemcau.api.bodies import StrictBody
from diemcau.meetings.conclusions import Attachment

__all__ = [
    "ConclusionBody",
    "Extend",
    "Grant",
    "GroupBody",
    "GroupPatch",
    "InviteBody",
    "MeetingCreate",
    "MeetingPatch",
    "Revoke",
]


class InviteBody(StrictBody):
    """Who is invited, as an operator names them (codes)."""

    everyone: bool = Field(False, description="every site of the country (except the chair)")
    units: list[str] = Field(default_factory=list, max_length=20000, description="unit codes")
    sites: list[str] = Field(default_factory=list, max_length=20000, description="site codes")
    groups: list[int] = Field(default_factory=list, max_length=100, description="saved groups")
    kinds: list[str] = Field(default_factory=list, max_length=5, description="e.g. ['commune']")
    exclude_sites: list[str] = Field(default_factory=list, max_length=20000)


class MeetingCreate(StrictBody):
    title: str = Field(min_length=1, max_length=300)
    agenda: str = Field("", max_length=20000)
    invite: InviteBody
    chair_user_id: int | None = Field(None, description="default: the caller, if a chair/admin")
    delegates: list[int] = Field(default_factory=list, max_length=50)
    scheduled_start: datetime | None = None
    scheduled_end: datetime | None = None
    reminder_lead_s: int = Field(900, ge=0, le=7 * 86400)
    late_after_s: int = Field(300, ge=0, le=86400)


class MeetingPatch(StrictBody):
    title: str | None = Field(None, min_length=1, max_length=300)
    agenda: str | None = Field(None, max_length=20000)
    scheduled_start: datetime | None = None
    scheduled_end: datetime | None = None
    delegates: list[int] | None = Field(None, max_length=50)


class Extend(StrictBody):
    minutes: int = Field(ge=1, le=600)


class Grant(StrictBody):
    site_ids: list[int] = Field(default_factory=list, max_length=2)
    site_codes: list[str] = Field(default_factory=list, max_length=2)
    add: bool = Field(False, description="keep the current speaker: a two-site dialogue")


class Revoke(StrictBody):
    site_id: int | None = Field(None, description="one speaker; omit to revoke everyone")


class ConclusionBody(StrictBody):
    body: str = Field(min_length=1, max_length=50000)
    attachments: list[Attachment] = Field(default_factory=list, max_length=20)


class GroupBody(StrictBody):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=2000)
    invite: InviteBody


class GroupPatch(StrictBody):
    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)
    invite: InviteBody | None = None
