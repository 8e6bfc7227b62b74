"""The audit log's table: one append-only row per chair, operator or system action.

The table and its trigger come from migration ``meetings_0001`` (where the log was
born); it is its own package now because meetings, command and the API all write it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from diemcau.store.models import Base
from diemcau.store.types import UTCDateTime

__all__ = ["AuditEntry"]


class AuditEntry(Base):
    """One append-only audit record. A database trigger refuses UPDATE and DELETE.

    ``meeting_id`` carries no foreign key on purpose: the log outlives what it describes.
    """

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor_kind: Mapped[str] = mapped_column(String(16))  # staff | site | system
    actor_id: Mapped[int | None] = mapped_column(Integer)
    actor_name: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64), index=True)
    meeting_id: Mapped[int | None] = mapped_column(Integer, index=True)
    target: Mapped[str | None] = mapped_column(String(300))
    details: Mapped[dict[str, object] | None] = mapped_column(JSON)
