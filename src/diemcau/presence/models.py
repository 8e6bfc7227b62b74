"""Presence tables: the per-site session log, durable messages, and stream follows.

Live presence lives in memory (`PresenceHub`); these tables hold what must
survive a restart: every state transition (written in batches, so a national
join does not mean one transaction per site), every durable server -> site
message (stored before `send`/`broadcast` return), and which sites follow which
broadcast stream.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import (
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from diemcau.store.models import Base, utcnow

__all__ = [
    "PresenceEvent",
    "PresenceMessage",
    "PresenceFollow",
    "EVENTS_TABLE",
    "MESSAGES_TABLE",
    "FOLLOWS_TABLE",
]


class PresenceEvent(Base):
    """One presence transition of one site (its session log)."""

    __tablename__ = "presence_events"
    __table_args__ = (Index("ix_presence_events_site_id_at", "site_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    rtt_ms: Mapped[float | None] = mapped_column(Float)
    loss_pct: Mapped[float | None] = mapped_column(Float)
    jitter_ms: Mapped[float | None] = mapped_column(Float)


class PresenceMessage(Base):
    """A durable server -> site message on one stream.

    ``stream`` is ``site:<id>`` for a site's own stream (`PresenceHub.send`)
    or the broadcast stream's name (``meeting:42``).
    """

    __tablename__ = "presence_messages"
    __table_args__ = (
        UniqueConstraint("stream", "seq"),
        UniqueConstraint("stream", "msg_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    stream: Mapped[str] = mapped_column(String(96))
    seq: Mapped[int] = mapped_column(Integer)
    msg_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PresenceFollow(Base):
    """A site follows a broadcast stream from ``from_seq`` on."""

    __tablename__ = "presence_follows"

    stream: Mapped[str] = mapped_column(String(96), primary_key=True)
    site_id: Mapped[int] = mapped_column(
        ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    from_seq: Mapped[int] = mapped_column(Integer, default=0)


# The tables themselves, for Core bulk inserts (the ORM bulk path costs far more per row,
# and these inserts run on the event loop during a national join).
EVENTS_TABLE = cast(Table, PresenceEvent.__table__)
MESSAGES_TABLE = cast(Table, PresenceMessage.__table__)
FOLLOWS_TABLE = cast(Table, PresenceFollow.__table__)
