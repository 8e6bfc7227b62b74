"""Core tables: the directory (units, sites), staff accounts and instance settings.

Other packages add their own tables in their own modules (``presence.models``,
``meetings.models`` ...) on the same `Base`, each with its own Alembic migration
that branches from the foundation revision; ``migrate`` upgrades to all heads.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = ["Base", "SettingValue", "Site", "StaffUser", "Unit", "utcnow", "LEVELS", "ROLES"]

# Levels of the administrative tree, top down. CSV trees may use any of these.
LEVELS = ("country", "province", "district", "commune")
# Staff roles (docs/provisioning.md). A province officer is bound to one province unit.
ROLES = ("admin", "chair", "operator", "province_officer")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class SettingValue(Base):
    """Instance-wide key/value settings (e.g. the generated HMAC key)."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Unit(Base):
    """An administrative unit: country, province, (district), commune."""

    __tablename__ = "units"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # Diacritics-free lowercase name for search ("phuong ben nghe").
    search_key: Mapped[str] = mapped_column(String(200), index=True)
    level: Mapped[str] = mapped_column(String(16), index=True)
    unit_type: Mapped[str] = mapped_column(String(64), default="")
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("units.id", ondelete="RESTRICT"), index=True
    )
    # The province this unit lies in (itself for a province); None for the country.
    province_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    depth: Mapped[int] = mapped_column(Integer, default=0)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    dataset: Mapped[str] = mapped_column(String(32), default="")

    parent: Mapped[Unit | None] = relationship(
        remote_side=[id], foreign_keys=[parent_id], lazy="raise"
    )


class Site(Base):
    """A site (điểm cầu): one endpoint bound to a unit. A unit may hold several."""

    __tablename__ = "sites"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(48), unique=True)
    name: Mapped[str] = mapped_column(String(240))
    search_key: Mapped[str] = mapped_column(String(240), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), index=True)
    province_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    # "chair" for the central site, else the unit's level.
    kind: Mapped[str] = mapped_column(String(16), index=True)
    # HMAC-SHA256 of the site secret (security.site_secret_digest); None = not provisioned.
    secret_digest: Mapped[str | None] = mapped_column(String(64))
    # Id of the site key that made the digest (security.key_id); None = made before key
    # ids were kept, with the historical instance key (docs/security.md, "Keys").
    secret_key_id: Mapped[str | None] = mapped_column(String(16))
    credential_version: Mapped[int] = mapped_column(Integer, default=0)
    credential_issued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    unit: Mapped[Unit] = relationship(foreign_keys=[unit_id], lazy="raise")


class StaffUser(Base):
    """A staff account: admin, chair, operator or province officer."""

    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    province_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # Bumped by logout-everywhere, a password change or reset: tokens carrying an
    # older value are refused (docs/security.md, "Sessions").
    token_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
