"""Persistence: SQLAlchemy 2 models, async engines and Alembic migrations."""

from diemcau.store.db import Database, migrate
from diemcau.store.models import Base, SettingValue, Site, StaffUser, Unit, utcnow

__all__ = ["Base", "Database", "SettingValue", "Site", "StaffUser", "Unit", "migrate", "utcnow"]
