"""Command-center tables: reports with their revisions, directives, alerts.

A report's values are JSON on the report (the document a site filed, returned
as is); their sums and counts per province and period are kept in
``command_rollups`` as they are written, so aggregating 90 days of a whole
country reads totals instead of 300,000 reports (``bench/command.py``).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from diemcau.command.schemas import Value
from diemcau.store.models import Base, utcnow

__all__ = [
    "Alert",
    "CustomSchema",
    "StoredFile",
    "Directive",
    "DirectiveRecipient",
    "Report",
    "ReportRevision",
    "Rollup",
]


class Report(Base):
    """The current state of one site's report for one schema and period."""

    __tablename__ = "command_reports"
    __table_args__ = (
        UniqueConstraint("schema_key", "period", "site_id"),
        Index(
            "ix_command_reports_schema_key_period_province_id",
            "schema_key",
            "period",
            "province_id",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    schema_key: Mapped[str] = mapped_column(String(48))
    period: Mapped[date] = mapped_column(Date)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    # Denormalised from the site so aggregation never joins the directory.
    province_id: Mapped[int | None] = mapped_column(Integer)
    values: Mapped[dict[str, Value]] = mapped_column(JSON)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(16))
    submitted_by: Mapped[str] = mapped_column(String(120))
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_by: Mapped[str] = mapped_column(String(120))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Rollup(Base):
    """Running totals of one indicator (or one option of it) per schema, period, province.

    Kept up to date in the same transaction as every filing and correction
    (a correction subtracts the old values and adds the new), so a national
    90-day aggregate reads a few tens of thousands of rows instead of every
    report. ``province_id`` 0 holds sites outside any province. ``indicator``
    ``_reports`` counts the reports themselves. ``bucket`` is the option of a
    choice or yes/no indicator ("true"/"false"), empty for numbers.
    """

    __tablename__ = "command_rollups"

    schema_key: Mapped[str] = mapped_column(String(48), primary_key=True)
    period: Mapped[date] = mapped_column(Date, primary_key=True)
    province_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    indicator: Mapped[str] = mapped_column(String(48), primary_key=True)
    bucket: Mapped[str] = mapped_column(String(48), primary_key=True)
    n: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[float] = mapped_column(Float, default=0.0)


class ReportRevision(Base):
    """One change of a report: the values after it, what changed, who and when."""

    __tablename__ = "command_report_revisions"
    __table_args__ = (UniqueConstraint("report_id", "revision"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_id: Mapped[int] = mapped_column(
        ForeignKey("command_reports.id", ondelete="CASCADE"), index=True
    )
    revision: Mapped[int] = mapped_column(Integer)
    values: Mapped[dict[str, Value]] = mapped_column(JSON)
    # {indicator: [old, new]}; empty for the first submission.
    changes: Mapped[dict[str, list[Value | None]]] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(String(16))
    changed_by: Mapped[str] = mapped_column(String(120))
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    note: Mapped[str] = mapped_column(Text, default="")


class Directive(Base):
    """An order issued by staff to a set of sites."""

    __tablename__ = "command_directives"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    priority: Mapped[str] = mapped_column(String(16))
    deadline: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attachments: Mapped[list[dict[str, object]]] = mapped_column(JSON)
    # The area/filter as given by the issuer, kept for the record.
    target: Mapped[dict[str, object]] = mapped_column(JSON)
    issued_by: Mapped[str] = mapped_column(String(120))
    # The issuer's province when a province officer issued it (None: national).
    issuer_province_id: Mapped[int | None] = mapped_column(Integer)
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    reminders: Mapped[int] = mapped_column(Integer, default=0)
    last_reminded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    recipients_count: Mapped[int] = mapped_column(Integer, default=0)
    # Client-supplied id making a retried issue idempotent.
    client_id: Mapped[str | None] = mapped_column(String(64), unique=True)


class DirectiveRecipient(Base):
    """One site's copy of a directive: delivery, acknowledgement, completion."""

    __tablename__ = "command_directive_recipients"
    __table_args__ = (
        Index("ix_command_directive_recipients_province", "directive_id", "province_id"),
    )

    directive_id: Mapped[int] = mapped_column(
        ForeignKey("command_directives.id", ondelete="CASCADE"), primary_key=True
    )
    site_id: Mapped[int] = mapped_column(
        ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    province_id: Mapped[int | None] = mapped_column(Integer)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completion_note: Mapped[str] = mapped_column(Text, default="")
    reminded: Mapped[int] = mapped_column(Integer, default=0)


class Alert(Base):
    """A raised condition; active until ``cleared_at`` is set.

    ``(kind, key)`` names the condition (e.g. ``report_overdue`` /
    ``covid19:2026-11-25:province:12``); at most one active alert per pair.
    """

    __tablename__ = "command_alerts"
    __table_args__ = (
        Index("ix_command_alerts_kind_key", "kind", "key"),
        Index("ix_command_alerts_active", "cleared_at", "province_id"),
        # At most one active alert per condition, even with concurrent raisers.
        Index(
            "uq_command_alerts_active_condition",
            "kind",
            "key",
            unique=True,
            sqlite_where=text("cleared_at IS NULL"),
            postgresql_where=text("cleared_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(48))
    key: Mapped[str] = mapped_column(String(200))
    severity: Mapped[str] = mapped_column(String(16))
    province_id: Mapped[int | None] = mapped_column(Integer)
    site_id: Mapped[int | None] = mapped_column(Integer)
    message_vi: Mapped[str] = mapped_column(Text)
    message_en: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, object]] = mapped_column(JSON)
    raised_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    cleared_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_by: Mapped[str | None] = mapped_column(String(120))
    # What the acknowledging staff member wrote ("called the commune, power is back").
    acknowledge_note: Mapped[str | None] = mapped_column(Text)


class StoredFile(Base):
    """A file attached to a directive, kept by the server (``command.files``).

    Kept in the database, not on disk, so a standby server on PostgreSQL has
    the same files and a backup of the database is a backup of the attachments.
    """

    __tablename__ = "command_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    mime: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    uploaded_by: Mapped[str] = mapped_column(String(120))
    # The uploader's province when a province officer uploaded it (None: national).
    province_id: Mapped[int | None] = mapped_column(Integer)
    uploaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CustomSchema(Base):
    """An indicator schema an administrator added at run time (``command.schema_store``)."""

    __tablename__ = "command_custom_schemas"

    key: Mapped[str] = mapped_column(String(48), primary_key=True)
    body: Mapped[dict[str, object]] = mapped_column(JSON)
    added_by: Mapped[str] = mapped_column(String(120))
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
