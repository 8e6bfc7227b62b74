"""Inspection tables: every inspection of a site, inspection rounds, their items and snapshots.

A record names its site and inspector by value (code, name, province; username, display
name, role) as well as by id: what an inspection found must read the same years later,
whatever happens to the directory or the staff accounts since. The tables come from
migration ``inspection_0001`` (docs/inspection.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, TypedDict

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from diemcau.records import JsonObject
from diemcau.store.models import Base
from diemcau.store.types import UTCDateTime

if TYPE_CHECKING:
    from diemcau.directory.sites import SiteInfo

__all__ = [
    "CLOSED_STATES",
    "OPEN_STATES",
    "VERDICTS",
    "Inspection",
    "InspectionRound",
    "InspectionRoundItem",
    "InspectionSnapshot",
    "SiteByValue",
    "site_by_value",
]


class SiteByValue(TypedDict):
    """A site's columns in an inspection or a round item: its id and, by value, its names."""

    site_id: int
    site_code: str
    site_name: str
    province_id: int | None
    province_name: str


def site_by_value(site: SiteInfo) -> SiteByValue:
    """The columns naming `site` in a new row, as the directory has it now."""
    return {
        "site_id": site.id,
        "site_code": site.code,
        "site_name": site.name,
        "province_id": site.province_id,
        "province_name": site.province_name,
    }


# waiting: the site was told to publish and has not yet; live: it publishes (answered).
OPEN_STATES = ("waiting", "live")
# ended: the inspector (or a lease, or a restart) ended an answered inspection.
CLOSED_STATES = ("ended", "not_answered")
# đạt / chưa đạt / không trả lời.
VERDICTS = ("pass", "fail", "no_answer")


class Inspection(Base):
    """One inspection of one site by one inspector, from the request to its end."""

    __tablename__ = "inspections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(Integer, index=True)
    site_code: Mapped[str] = mapped_column(String(48))
    site_name: Mapped[str] = mapped_column(String(300))
    province_id: Mapped[int | None] = mapped_column(Integer, index=True)
    province_name: Mapped[str] = mapped_column(String(300), default="")
    inspector: Mapped[str] = mapped_column(String(64))
    inspector_name: Mapped[str] = mapped_column(String(200), default="")
    inspector_role: Mapped[str] = mapped_column(String(32))
    inspector_user_id: Mapped[int | None] = mapped_column(Integer)
    round_id: Mapped[int | None] = mapped_column(Integer, index=True)
    round_item_id: Mapped[int | None] = mapped_column(Integer)
    # The live meeting the site was in when asked (None: outside any meeting).
    meeting_id: Mapped[int | None] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), index=True)
    # Why it closed: ended, no_terminal, no_publish, inspector_gone, server_restart.
    reason: Mapped[str] = mapped_column(String(32), default="")
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The call running now (None: silent), and the calls so far.
    call_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    call_count: Mapped[int] = mapped_column(Integer, default=0)
    call_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    # Whether the recording service kept it (a meeting's policy decides).
    recorded: Mapped[bool] = mapped_column(Boolean, default=False)


class InspectionRound(Base):
    """A planned round: a list of sites, or a random sample, stepped through by an inspector."""

    __tablename__ = "inspection_rounds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    # The province the round is limited to (an officer's rounds, a province sample);
    # None: sites of several provinces.
    province_id: Mapped[int | None] = mapped_column(Integer, index=True)
    # How the sites were chosen: {"kind": "list"} or {"kind": "sample", "n", "province"}.
    selection: Mapped[JsonObject] = mapped_column(JSON, default=dict)
    created_by: Mapped[str] = mapped_column(String(64))
    created_by_user_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class InspectionRoundItem(Base):
    """One site of a round: its place in the order, the verdict and the inspector's note."""

    __tablename__ = "inspection_round_items"
    __table_args__ = (
        UniqueConstraint("round_id", "position"),
        UniqueConstraint("round_id", "site_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    round_id: Mapped[int] = mapped_column(
        ForeignKey("inspection_rounds.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    site_id: Mapped[int] = mapped_column(Integer)
    site_code: Mapped[str] = mapped_column(String(48))
    site_name: Mapped[str] = mapped_column(String(300))
    province_id: Mapped[int | None] = mapped_column(Integer, index=True)
    province_name: Mapped[str] = mapped_column(String(300), default="")
    verdict: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # The latest inspection made from this item, and whether it was answered.
    inspection_id: Mapped[int | None] = mapped_column(Integer)
    answered: Mapped[bool | None] = mapped_column(Boolean)


class InspectionSnapshot(Base):
    """A frame the inspector kept of what it saw (one per round item, JPEG or PNG)."""

    __tablename__ = "inspection_snapshots"

    item_id: Mapped[int] = mapped_column(
        ForeignKey("inspection_round_items.id", ondelete="CASCADE"), primary_key=True
    )
    mime: Mapped[str] = mapped_column(String(32))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)
    taken_by: Mapped[str] = mapped_column(String(64))
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime)
